"""Training samples: a random crop of a training CT at a random spacing, augmented, with a random
(and randomly perturbed) preset and a random camera; its target is the `dvr` ray marcher's image.

Augmentation (each drawn from the sample's own generator, so a sample depends only on its seed):
- flips of each axis and a swap of the two in-plane axes (the CTs are resampled to grids whose
  i and j spacings are equal, so these are rotations and mirrors of the anatomy);
- HU scale x (1 +- HU_SCALE) and offset +- HU_SHIFT;
- the preset shifted by +- PRESET_SHIFT_HU (Slicer's Shift slider) and its opacity scaled by
  PRESET_OPACITY_SCALE;
- the segmentation channel dropped half the time (users prepare with and without one);
- cameras anywhere on the sphere, framing ZOOM of the crop's bounding sphere (close-ups too).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..camera import Camera, orbit_camera
from ..errors import RenderFMWarning
from ..groundtruth.dvr import render_dvr
from ..loading import compact_labels, load_ct, load_labels
from ..priming import MIN_OPACITY
from ..transfer import Preset, shifted
from ..volume import Volume, grid_bounding_radius, grid_center_ras, resample_spaced
from .config import Spacing, spacing_ijk
from .manifest import ScanEntry

HU_SCALE = 0.05
HU_SHIFT = 30.0
PRESET_SHIFT_HU = 60.0
PRESET_OPACITY_SCALE = (0.7, 1.4)
ZOOM = (0.4, 1.0)
MIN_VISIBLE = 0.01  # share of a crop's voxels the preset must show
DRAWS = 20          # crops tried before giving up on a scan and preset


@dataclass(frozen=True)
class ScanGrids:
    """One manifest entry on each training spacing: (CT, labels or None) by spacing in mm."""

    entry: ScanEntry
    grids: dict[Spacing, tuple[Volume, Volume | None]]


@dataclass(frozen=True)
class Sample:
    """A crop (HU, RAS mm), its labels (or None), a preset and a camera; the target's size."""

    volume: Volume
    labels: Volume | None
    preset: Preset
    camera: Camera
    size: int

    def target(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rgb [size, size, 3] over black, alpha [size, size]) of the dvr ray marcher."""
        frame = render_dvr(self.volume, self.preset, self.camera, self.size)
        return frame.rgb, frame.alpha


def load_grids(entry: ScanEntry, spacings: tuple[Spacing, ...]) -> ScanGrids:
    """The entry's CT (and labels) resampled to each of `spacings` (config.py), on the CPU."""
    ct = load_ct(entry.ct, entry.hu_offset, refine_coarse=False)
    labels = None
    if entry.segmentation is not None:
        read = load_labels(entry.segmentation, ct, "cpu")
        labels = Volume(compact_labels(read.array), read.ijk_to_ras)
    grids: dict[Spacing, tuple[Volume, Volume | None]] = {}
    for spacing in spacings:
        volume = resample_spaced(ct, spacing_ijk(spacing))
        with warnings.catch_warnings():  # "resampled onto the CT grid": intended here
            warnings.simplefilter("ignore", RenderFMWarning)
            grids[spacing] = (volume, None if labels is None else
                              load_labels(labels, volume, "cpu"))
    return ScanGrids(entry, grids)


def draw_sample(scans: list[ScanGrids], seed: tuple[int, ...], crop_voxels: int,
                size: int) -> Sample:
    """The sample of `seed` (e.g. (run seed, step, index)): a scan, spacing, preset, crop,
    augmentation and camera."""
    generator = np.random.default_rng(seed)
    for _ in range(DRAWS):
        scan = scans[generator.integers(len(scans))]
        spacing = list(scan.grids)[generator.integers(len(scan.grids))]
        volume, labels = scan.grids[spacing]
        preset = perturbed(scan.entry.presets[generator.integers(len(scan.entry.presets))],
                           generator)
        crop, crop_labels = _crop(volume, labels, crop_voxels, generator)
        if float((preset.opacity(crop.array) > MIN_OPACITY).float().mean()) >= MIN_VISIBLE:
            crop, crop_labels = _augment(crop, crop_labels, generator)
            return Sample(crop, crop_labels, preset, _camera(crop, generator), size)
    raise RuntimeError(f"no crop of the training scans shows anything after {DRAWS} draws "
                       f"(seed {seed}); check the manifest's presets")


def perturbed(preset: Preset, generator: np.random.Generator) -> Preset:
    """The preset shifted along HU (transfer.shifted) and with its opacity scaled (still within
    [0, 1])."""
    moved = shifted(preset, generator.uniform(-PRESET_SHIFT_HU, PRESET_SHIFT_HU))
    gain = generator.uniform(*PRESET_OPACITY_SCALE)
    return replace(moved, scalar_opacity=tuple((hu, min(1.0, value * gain))
                                               for hu, value in moved.scalar_opacity))


def _crop(volume: Volume, labels: Volume | None, side: int,
          generator: np.random.Generator) -> tuple[Volume, Volume | None]:
    """A random box of at most side^3 voxels (even sides) and its labels."""
    box = []
    for extent in volume.shape:
        length = min(side, extent) // 2 * 2
        start = int(generator.integers(extent - length + 1))
        box.append((start, start + length))
    crop = volume.box(tuple(box))
    crop = Volume(crop.array.contiguous(), crop.ijk_to_ras)
    if labels is None:
        return crop, None
    return crop, Volume(labels.box(tuple(box)).array.contiguous(), crop.ijk_to_ras)


def _augment(volume: Volume, labels: Volume | None,
             generator: np.random.Generator) -> tuple[Volume, Volume | None]:
    """Flips, an in-plane swap, HU jitter and dropping the labels, on the crop's own grid."""
    flips = [axis for axis in range(3) if generator.random() < 0.5]
    swap = generator.random() < 0.5
    scale = 1.0 + generator.uniform(-HU_SCALE, HU_SCALE)
    offset = generator.uniform(-HU_SHIFT, HU_SHIFT)

    def moved(array: torch.Tensor) -> torch.Tensor:
        array = array.flip(flips) if flips else array
        return (array.transpose(1, 2) if swap else array).contiguous()

    hu = Volume(moved(volume.array) * scale + offset, volume.ijk_to_ras)
    keep = labels is not None and generator.random() < 0.5
    if keep and labels is not None:
        return hu, Volume(moved(labels.array), volume.ijk_to_ras)
    return hu, None


def _camera(volume: Volume, generator: np.random.Generator) -> Camera:
    """A camera from a random direction aimed near the crop's centre, framing ZOOM of it."""
    radius = grid_bounding_radius(volume.ijk_to_ras, volume.shape)
    centre = grid_center_ras(volume.ijk_to_ras, volume.shape)
    zoom = generator.uniform(*ZOOM)
    centre = centre + generator.uniform(-1.0, 1.0, 3) * radius * (1.0 - zoom) * 0.5
    azimuth = generator.uniform(0.0, 360.0)
    elevation = math.degrees(math.asin(generator.uniform(-0.95, 0.95)))
    return orbit_camera(centre, radius * zoom, azimuth, elevation)
