"""Shared fixtures: the real scans in ../shared/data (see its README for origin and licence)."""

from pathlib import Path

import pytest
from data_paths import SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip when this checkout has none beside it."""
    if not (SHARED_DATA / "totalseg").is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_ct():
    """The bundled sample CT (Resources/sample/ct.nii.gz): 122 x 101 x 112 voxels of 3 mm, HU."""
    from RenderFMLib.resources import resource_path
    from RenderFMLib.volume import read_ct

    return read_ct(resource_path("sample", "ct.nii.gz"))


@pytest.fixture(scope="session")
def sample_labels():
    """Its TotalSegmentator segmentation (61 `total` classes), int64 on the CT's grid."""
    from RenderFMLib.resources import resource_path
    from RenderFMLib.volume import read_label_map

    return read_label_map(resource_path("sample", "segmentation.nii.gz"))


@pytest.fixture(scope="session")
def without_groups():
    """without(gaussians, groups): the Gaussians whose labels are in none of these anatomical
    groups, picked by label (labels_in_groups), not through api.shown: the expected content of
    a render that hides those groups."""
    import torch

    from RenderFMLib.segmentation.classes import labels_in_groups

    def without(gaussians, groups):
        hidden = torch.tensor(sorted(labels_in_groups(groups)), device=gaussians.labels.device)
        return gaussians.select(~torch.isin(gaussians.labels, hidden))

    return without
