"""The high-level API every front end uses (CLI, Slicer module, benchmarks): prepare() and render().

    gaussians = prepare("ct.nii.gz", segmentation="seg.nii.gz", preset="CT-Bone")
    frame = render(gaussians, default_camera(gaussians), 512)
    frame.save_png("out.png")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .camera import Camera, camera_tensors, orbit_camera
from .gaussians import SixDGaussians
from .inputs import gradient_ras, input_channels
from .errors import RenderFMError
from .priming import MIN_OPACITY, prime
from .render.reference import blend, slice_project, tile_keys
from .render.reference.tile_keys import REFERENCE_TILE_SIZE
from .transfer import Preset, load_preset
from .volume import Volume, align_labels, read_ct, read_segmentation, resample_isotropic

DEFAULT_PRESET = "CT-Chest-Contrast-Enhanced"
MAX_IMAGE_SIDE = 8192

Progress = Callable[[float, str], None]


def _silent(fraction: float, message: str) -> None:
    """The default progress callback: ignores (fraction in [0, 1], message)."""


def prepare(
    ct: Volume | str | Path,
    segmentation: Volume | str | Path | None = None,
    preset: Preset | str | Path = DEFAULT_PRESET,
    *,
    spacing_mm: float | None = None,
    hu_offset: float | None = None,
    keep_labels: Iterable[int] | None = None,
    device: str | torch.device = "cpu",
    progress: Progress = _silent,
) -> SixDGaussians:
    """Turn a CT into 6D Gaussians (Anatomy-Guided Priming; the network's residuals come later).

    ct: a Volume (HU, RAS) or a path (NIfTI, NRRD, MHA or a DICOM folder); segmentation: a label
    map on any overlapping grid (resampled into the CT's); preset: a bundled preset name, a preset
    file or a Preset; spacing_mm: resample the CT to this isotropic spacing first (the paper uses
    1.5); hu_offset: added to stored values (e.g. -1024 for CT stored without rescale);
    keep_labels: keep only Gaussians with these segmentation labels; progress(fraction, message).
    """
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    if keep_labels is not None and segmentation is None:
        raise RenderFMError("keeping only some labels needs a segmentation")
    progress(0.0, "reading the CT")
    if isinstance(ct, Volume):
        volume = ct if hu_offset is None else Volume(ct.array + hu_offset, ct.ijk_to_ras)
    else:
        volume = read_ct(ct, hu_offset=hu_offset)
    if spacing_mm is not None:
        progress(0.1, f"resampling to {spacing_mm} mm")
        volume = resample_isotropic(volume, spacing_mm)
    volume = Volume(volume.array.to(device=device, dtype=torch.float32), volume.ijk_to_ras)
    labels = None
    if segmentation is not None:
        progress(0.2, "reading the segmentation")
        if isinstance(segmentation, Volume):
            labels = align_labels(segmentation, volume)
        else:
            labels = read_segmentation(segmentation, volume)
        labels = Volume(labels.array.to(device), labels.ijk_to_ras)
    progress(0.4, "evaluating the transfer function")
    gradient = gradient_ras(volume)
    inputs = input_channels(volume, preset, labels, gradient)
    progress(0.6, "priming Gaussians")
    keep_labels = set(keep_labels) if keep_labels is not None else None
    params, gaussian_labels = prime(volume, preset, inputs, gradient, labels, keep_labels)
    if len(gaussian_labels) == 0:
        where = f" within labels {sorted(keep_labels)}" if keep_labels is not None else ""
        raise RenderFMError(
            f"preset '{preset.name}' makes nothing in this CT visible{where} (no 2x2x2 block "
            f"reaches opacity {MIN_OPACITY}); choose another preset (see `renderfm presets`)")
    gaussians = SixDGaussians(params, gaussian_labels, volume.ijk_to_ras, volume.shape,
                              preset.to_dict())
    progress(0.9, "precomputing slicing terms")
    gaussians.derived()
    progress(1.0, f"{len(gaussians)} Gaussians")
    return gaussians


@dataclass
class Frame:
    """A rendered image: rgb [H, W, 3] in [0, 1] (background included), alpha [H, W] coverage,
    depth [H, W] expected depth in mm along the optical axis (0 where alpha is 0)."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor

    def to_uint8(self) -> np.ndarray:
        """RGB [H, W, 3] uint8."""
        return (self.rgb.detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()

    def save_png(self, path: str | Path) -> None:
        """Write the RGB image as PNG."""
        from PIL import Image

        Image.fromarray(self.to_uint8()).save(path)


def default_camera(
    gaussians: SixDGaussians, azimuth: float = 0.0, elevation: float = 0.0, view_angle: float = 30.0
) -> Camera:
    """An orbit camera around the source CT that frames its bounding sphere (camera.orbit_camera)."""
    return orbit_camera(gaussians.center_ras(), gaussians.bounding_radius(), azimuth, elevation,
                        view_angle)


def render(
    gaussians: SixDGaussians,
    camera: Camera,
    size: int | tuple[int, int],
    *,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    visible_labels: Iterable[int] | None = None,
) -> Frame:
    """Render the Gaussians seen from `camera` at `size` (side, or (width, height)) pixels.

    Differentiable with respect to the Gaussians' parameters. visible_labels: draw only
    Gaussians whose segmentation label is in this set (no new preparation needed).
    """
    width, height = (size, size) if isinstance(size, int) else size
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise ValueError(f"image size must be 1..{MAX_IMAGE_SIDE} pixels, not {width}x{height}")
    if visible_labels is not None:
        allowed = torch.tensor(sorted(set(visible_labels)), dtype=torch.int64, device=gaussians.device)
        gaussians = gaussians.select(torch.isin(gaussians.labels, allowed))
    dtype = gaussians.means.dtype
    world_to_camera, intrinsics, centre = camera_tensors(camera, width, height, gaussians.device,
                                                         dtype)
    s_c, gains, s_dd_inv = gaussians.derived()
    projected = slice_project(
        gaussians.means, gaussians.dir_means, s_c, gains, s_dd_inv, gaussians.opacity_logits,
        gaussians.rgb, gaussians.sh, world_to_camera, intrinsics, centre, width, height,
    )
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height, REFERENCE_TILE_SIZE)
    rgb, alpha, depth = blend(
        projected["means2d"], projected["conics"], projected["colors"], projected["opacities"],
        projected["depths"], ids, ranges, width, height,
        torch.tensor(background, dtype=dtype, device=gaussians.device), REFERENCE_TILE_SIZE,
    )
    return Frame(rgb, alpha, depth)
