"""The HU-threshold segmentation (`--seg threshold`) on real CTs.

The bundled sample is a non-contrast abdomen/pelvis CT (3 mm voxels) with TotalSegmentator's fast
segmentation as reference (Resources/sample/README.md); the head CT is Slicer's real GE scan
(shared/data/README.md), stored without rescale, hence hu_offset=-1024.
"""

import numpy as np
import pytest
import torch

from RenderFMLib.resources import resource_path
from RenderFMLib.segmentation.classes import labels_in_groups
from RenderFMLib.segmentation.threshold import THRESHOLD_LABELS, threshold_segmentation
from RenderFMLib.volume import Volume, read_ct, read_segmentation

BONE, VESSELS, LUNG, SOFT = (THRESHOLD_LABELS[k]
                             for k in ("bone", "vessels", "lung", "soft_tissue"))
SOLID_ORGANS = (1, 2, 3, 5)  # spleen, kidneys, liver: no air inside
AORTA = 52


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def sample():
    """(CT, reference labels, threshold labels) of the bundled sample, as numpy where useful."""
    ct = read_ct(resource_path("sample", "ct.nii.gz"))
    reference = read_segmentation(resource_path("sample", "segmentation.nii.gz"), ct)
    labels = threshold_segmentation(ct)
    return ct, reference.array.numpy(), labels


def test_labels_are_int64_on_the_ct_grid_and_only_threshold_labels(sample):
    ct, _, labels = sample
    assert labels.array.dtype == torch.int64
    assert labels.shape == ct.shape
    np.testing.assert_array_equal(labels.ijk_to_ras, ct.ijk_to_ras)
    assert set(torch.unique(labels.array).tolist()) <= {0, BONE, VESSELS, LUNG, SOFT}
    counts = {label: int((labels.array == label).sum()) for label in (BONE, LUNG, SOFT)}
    assert all(count > 1000 for count in counts.values()), counts


def test_bone_matches_reference_skeleton(sample):
    """Dice >= 0.8 against every skeleton class of the reference (vertebrae, ribs, costal
    cartilages, hips, femurs, sacrum). Measured 0.88; the misses are mostly costal cartilage
    (~100 HU, not bone by density) and the low-density sacrum."""
    _, reference, labels = sample
    skeleton = np.isin(reference, sorted(labels_in_groups(["skeleton"])))
    assert skeleton.sum() > 50_000  # the reference does hold the skeleton
    assert dice(labels.array.numpy() == BONE, skeleton) >= 0.8


def test_lung_label_covers_the_reference_lungs(sample):
    """The sample holds only the lung bases (lower lobes 11 and 14, a sliver of 10). 98% of those
    voxels are below -400 HU; >= 70% must be labelled lung, which leaves room for the partial
    volume of the thin bases at the diaphragm dome (measured 98%). Air is never inside the
    liver, spleen or kidneys, so < 1% of lung-labelled voxels may fall there (measured 0)."""
    _, reference, labels = sample
    lung = labels.array.numpy() == LUNG
    reference_lungs = np.isin(reference, sorted(labels_in_groups(["lungs"])))
    assert reference_lungs.sum() > 3000
    assert lung[reference_lungs].mean() >= 0.7
    assert np.isin(reference[lung], SOLID_ORGANS).mean() < 0.01


def test_nothing_outside_the_body_and_no_vessels_without_contrast(sample):
    ct, _, labels = sample
    values, hu = labels.array.numpy(), ct.array.numpy()
    corners = values[np.ix_([0, -1], [0, -1], [0, -1])]
    assert (corners == 0).all()
    sides = np.zeros(values.shape, dtype=bool)
    sides[:, [0, -1], :] = True
    sides[:, :, [0, -1]] = True
    assert (values[sides & (hu < -500)] == 0).all()  # the air around the patient
    body = np.count_nonzero(values)
    assert np.count_nonzero(values == VESSELS) < 0.005 * body  # non-contrast scan: (almost) none


def test_contrast_filled_aorta_is_vessels_not_bone(sample):
    """The sample with its aorta (reference label 52, lying against the spine) set to 300 HU,
    as in an arterial-phase scan, the bone seed level: the aorta becomes vessels, not bone."""
    ct, reference, labels = sample
    aorta = torch.from_numpy(reference == AORTA)
    noise = torch.randn(int(aorta.sum()), generator=torch.Generator().manual_seed(0)) * 15.0
    enhanced = ct.array.clone()
    enhanced[aorta] = 300.0 + noise
    result = threshold_segmentation(Volume(enhanced, ct.ijk_to_ras)).array.numpy()
    aorta = aorta.numpy()
    assert aorta.sum() > 1000
    assert (result[aorta] == VESSELS).mean() >= 0.9
    assert (result[aorta] == BONE).mean() <= 0.05
    skeleton = np.isin(reference, sorted(labels_in_groups(["skeleton"])))
    assert dice(result == BONE, skeleton) >= 0.8


def test_head_ct_finds_the_skull(shared_data):
    ct = read_ct(shared_data / "slicer_cthead_dicom", hu_offset=-1024)
    values = threshold_segmentation(ct).array.numpy()
    hu = ct.array.numpy()
    labelled = values > 0
    assert (values[np.ix_([0, -1], [0, -1], [0, -1])] == 0).all()
    assert (values[labelled] == BONE).mean() >= 0.15  # measured 0.29: a head is largely skull
    assert (values[hu >= 300] == BONE).mean() >= 0.95  # nothing but bone passes 300 HU here
    top = values[70:]  # the upper slices: the skull is a shell whose inside stays soft tissue
    assert (top[top > 0] == SOFT).mean() >= 0.5
