"""Fixtures of the robustness tests: a small phantom CT made on the fly, and `renderfm` run in
this process (main([...]); torch is imported once), reported as test_cli's subprocess runs are."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

SIDE = 24  # voxels of 3 mm: a 72 mm cube
SPACING_MM = 3.0
BONE_LABEL = 27  # a vertebra (skeleton)
MUSCLE_LABEL = 80  # a gluteus muscle (muscles)


@dataclass
class Phantom:
    """The files made once per session (see phantom())."""

    ct: Path
    seg: Path  # bone core: BONE_LABEL, soft tissue around it: MUSCLE_LABEL
    empty_seg: Path  # the same grid, every voxel 0
    model: Path  # `renderfm prepare ct --seg seg --preset CT-Bone`
    bare_model: Path  # `renderfm prepare ct --preset CT-Bone`: no segmentation labels


def _write(array: np.ndarray, path: Path) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((SPACING_MM,) * 3)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> Phantom:
    """A 24^3 CT: air (-1000 HU) around a soft-tissue cylinder (40 HU) with a bone core
    (700 HU) along the slice axis, with its segmentation; prepared in about a second."""
    from RenderFMLib.cli import main

    folder = tmp_path_factory.mktemp("phantom")
    j, i = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    radius = np.broadcast_to(np.hypot(j, i), (SIDE, SIDE, SIDE))
    hu = np.select([radius < 3, radius < 9], [700.0, 40.0], -1000.0).astype(np.float32)
    labels = np.select([radius < 3, radius < 9], [BONE_LABEL, MUSCLE_LABEL], 0).astype(np.uint8)
    phantom = Phantom(_write(hu, folder / "ct.nii.gz"), _write(labels, folder / "seg.nii.gz"),
                      _write(np.zeros_like(labels), folder / "empty_seg.nii.gz"),
                      folder / "model.safetensors", folder / "bare.safetensors")
    for extra, model in ((["--seg", phantom.seg], phantom.model), ([], phantom.bare_model)):
        arguments = ["prepare", phantom.ct, *extra, "--preset", "CT-Bone", "-o", model]
        assert main([str(argument) for argument in arguments]) == 0
    return phantom


@pytest.fixture
def cli(capsys) -> Callable[..., subprocess.CompletedProcess]:
    """cli(*args): `renderfm ARGS` in this process, as a CompletedProcess (exit status, stdout,
    stderr) for test_cli's checks; an argparse refusal is its exit status 2."""
    from RenderFMLib.cli import main

    def run(*args: str | Path) -> subprocess.CompletedProcess:
        capsys.readouterr()  # what came before is not this run's
        try:
            status = main([str(arg) for arg in args])
        except SystemExit as refusal:
            status = refusal.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), status, out, err)

    return run
