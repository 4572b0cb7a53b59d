"""The CT and its label map as prepare() and finetune() take them: read (or taken as Volumes),
offset, resampled, aligned, segmented; thick-slice CTs resampled isotropic, coarse CTs onto a
finer grid, labels held in the smallest integer type."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import RenderFMWarning
from .memory import check_resampling
from .segmentation.readers import read_labels
from .segmentation.threshold import threshold_segmentation
from .segmentation.totalseg import run_totalsegmentator
from .volume import Volume, align_labels, isotropic_grid, read_ct, resample_isotropic

MAX_ANISOTROPY = 2.5  # longest / shortest voxel edge beyond which a CT is resampled isotropic
COARSE_MM = 3.0  # a voxel edge beyond the coarsest training grid (mm): the CT is read finer...
REFINED_MM = 2.0  # ... on this isotropic grid (mm), the middle of the training grids' range...
REFINED_MAX_VOXELS = 2**25  # ... or the finest isotropic grid of at most this many voxels


def load_ct(ct: Volume | str | Path, hu_offset: float | None = None,
            spacing_mm: float | None = None, device: str | torch.device = "cpu",
            refine_coarse: bool = True) -> Volume:
    """The CT in float32 HU on `device`, as prepare() reads it: read (or taken), offset by
    hu_offset, resampled to spacing_mm (isotropic) when given, else as default_spacing says
    (refine_coarse=False: thick slices only, for training, which resamples the CT itself)."""
    volume = _as_given(ct, hu_offset)
    if spacing_mm is None:
        spacing_mm = default_spacing(volume, refine_coarse)
    if spacing_mm is not None:
        check_resampling(math.prod(isotropic_grid(volume, spacing_mm)[1]))  # before the work
        volume = resample_isotropic(volume, spacing_mm)
    return Volume(volume.array.to(device=device, dtype=torch.float32), volume.ijk_to_ras)


def prepared_grid(volume: Volume, spacing_mm: float | None = None
                  ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(ijk_to_ras, shape (K, J, I)) of the grid load_ct puts `volume` on for spacing_mm (its own
    grid, or an isotropic one for spacing_mm, thick slices or coarse voxels), without resampling
    it."""
    if spacing_mm is None:
        spacing_mm = default_spacing(volume)
    if spacing_mm is None:
        k, j, i = volume.shape
        return np.asarray(volume.ijk_to_ras), (k, j, i)
    return isotropic_grid(volume, spacing_mm)


def load_ct_as_read(ct: Volume | str | Path, hu_offset: float | None = None,
                    device: str | torch.device = "cpu") -> Volume:
    """The CT in float32 HU on `device` on its own grid, never resampled: what Slicer draws."""
    volume = _as_given(ct, hu_offset)
    return Volume(volume.array.to(device=device, dtype=torch.float32), volume.ijk_to_ras)


def _as_given(ct: Volume | str | Path, hu_offset: float | None) -> Volume:
    """The CT read (or taken) and offset by hu_offset."""
    if isinstance(ct, Volume):
        return ct if hu_offset is None else Volume(ct.array + hu_offset, ct.ijk_to_ras)
    return read_ct(ct, hu_offset=hu_offset)


def default_spacing(volume: Volume, refine_coarse: bool = True) -> float | None:
    """The isotropic spacing (mm) prepare() reads `volume` on when none is given; None for its
    own grid.

    Thick slices (voxels more than MAX_ANISOTROPY times longer on one axis than on another), with
    a warning: AGP's Gaussians are round, as wide as a 2x2x2 block's mean edge, so on 0.5 x 0.5 x
    5 mm voxels they would stand in thin layers 10 mm apart (stripes); the geometric mean spacing
    keeps the voxel count. Coarse voxels (an edge over COARSE_MM, after that), when
    refine_coarse: one Gaussian per 6-10 mm block draws a mosaic, and the network, trained on
    1.5-3 mm grids, adds little to it; on REFINED_MM (or the finest grid of REFINED_MAX_VOXELS
    voxels, if that is coarser) both draw such a CT closer to dvr (docs/network/coarse_grid/).
    """
    spacing = volume.spacing
    thick = spacing.max() > MAX_ANISOTROPY * spacing.min()
    chosen = round(float(np.prod(spacing)) ** (1.0 / 3.0), 2) if thick else None
    coarsest = chosen if chosen is not None else float(spacing.max())
    refined = _refined_spacing(volume) if refine_coarse and coarsest > COARSE_MM else coarsest
    if refined < coarsest:
        chosen = refined
    if thick:
        sizes = " x ".join(f"{s:.2f}" for s in spacing)
        warnings.warn(f"the CT's voxels are {sizes} mm ({spacing.max() / spacing.min():.1f} times "
                      f"longer on one axis): resampled to {chosen:g} mm isotropic so the picture "
                      "has no stripes (choose another with --spacing / spacing_mm)",
                      RenderFMWarning, stacklevel=3)
    return chosen


def _refined_spacing(volume: Volume) -> float:
    """REFINED_MM, or the finest isotropic spacing (mm, rounded up to 0.01) whose grid over the
    CT's extent has at most REFINED_MAX_VOXELS voxels."""
    extent_mm3 = float(np.prod(np.array(volume.shape) * volume.spacing[::-1]))
    return max(REFINED_MM, math.ceil(100 * (extent_mm3 / REFINED_MAX_VOXELS) ** (1 / 3)) / 100)


def load_labels(segmentation: Volume | str | Path, ct: Volume,
                device: str | torch.device) -> Volume:
    """The label map on the CT's grid: aligned, read from a file, or computed ("threshold",
    "auto", "auto-fast": api.SEGMENTERS)."""
    if isinstance(segmentation, Volume):
        return align_labels(segmentation, ct)
    if segmentation == "threshold":
        return threshold_segmentation(ct)
    if segmentation in ("auto", "auto-fast"):
        return run_totalsegmentator(ct, fast=segmentation == "auto-fast", device=str(device))
    return read_labels(segmentation, ct)


def compact_labels(labels: torch.Tensor) -> torch.Tensor:
    """The label map in the smallest integer type that holds its labels (uint8 for
    TotalSegmentator's and the threshold's): 1 byte a voxel instead of 8 while priming."""
    if labels.numel() == 0 or int(labels.min()) < 0:
        return labels
    largest = int(labels.max())
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if largest <= torch.iinfo(dtype).max:
            return labels.to(dtype)
    return labels
