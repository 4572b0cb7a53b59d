"""'dvr': emission-absorption ray marching, the model of Slicer's CPU ray cast volume rendering.

The model of VTK's vtkFixedPointVolumeRayCastMapper (DESIGN.md sections 2, 3 and 7), in PyTorch:
- rays through pixel centres (u + 0.5, v + 0.5) of the OpenCV pinhole of camera.py, the same
  convention as the Gaussian renderer;
- each ray is clipped to the box of voxel CENTRES (index 0 .. n - 1 on each axis), as VTK's mapper
  does (it only samples between voxel centres); the grid may be oblique or anisotropic (world ->
  IJK through the inverse of ijk_to_ras);
- the clipped segment of length L is cut into N = ceil(L / step_mm) equal pieces (ds = L / N, at
  most step_mm) sampled at their midpoints (our choice: the samples cover exactly L, so a
  homogeneous box gives the closed form); the default step is half the smallest voxel spacing;
- per sample, trilinear interpolation (post-classification) of HU, of the gradient magnitude
  |grad HU| (HU/mm, central differences in RAS mm) and, when the preset shades, of the per-voxel
  shading; opacity per mm a = scalar opacity(HU) x gradient factor(|grad|), alpha = 1 - (1 - a)^ds
  (opacity unit distance 1 mm);
- shading, as vtkEncodedGradientShader builds it for Slicer's default light (the renderer's
  automatic headlight): one directional light from the camera along the viewing axis (VTK makes
  every light directional), two-sided, its half vector equal to the light, so per voxel, with
  unit normal n = -grad / |grad|: diffuse D = ambient_light x ambient + diffuse |n.l| and
  specular S = specular |n.l|^power. VTK's headlight has a black ambient colour, so in Slicer the
  preset's ambient term has no effect: ambient_light defaults to 0 (measured against
  vtkFixedPointVolumeRayCastMapper in VTK 9.6: centre of a shaded ball within 0.5 %; with the
  ambient term added, 11 % too bright). A voxel whose gradient is flat (|grad| at most 1e-5 of
  the CT's HU range per mm; VTK's zero-normal rule) gets no diffuse or specular light. As in VTK,
  shading is computed at the voxels and interpolated; the sample's colour is rgb D + S (the
  specular added in white), premultiplied by alpha;
- front-to-back compositing; a ray stops once its opacity reaches early_stop (VTK stops at
  1 - 255/32767 = 0.9922); the premultiplied colour is clipped to [0, 1] (VTK clamps its fixed
  point sums) and composited over the background.

Measured against VTK 9.6's vtkFixedPointVolumeRayCastMapper set up as Slicer's CPU pipeline
(spacing on the image, an orthonormal user matrix, the default headlight, the same 1.5 mm step)
on the bundled CT at 256 px, azimuth 30, elevation 10: SSIM 0.985 (CT-Bone) and 0.987
(CT-Chest-Contrast-Enhanced), mean brightness within 1.4 %.

Differences from VTK, by design: gradient magnitudes are in HU per mm (the unit of presets in
transfer.py); VTK's are in HU per mean voxel spacing (measured: 2x ours on 2 mm voxels), which
only matters for presets whose gradient opacity is not constant (none of the CT presets). Samples
are floating point, not 15-bit fixed point, and their positions along the rays differ.

The rays march in dvr_march.py: in C++ on the CPU (render/cpu/march.cpp, skipping the samples
of cells all below the preset's first visible HU), else in PyTorch (its reference; `backend`).

Memory: rays run in chunks of RAYS_PER_CHUNK (PyTorch: in passes of at most ~170 MB); a
DvrScene holds HU and, for shaded presets, the unit normals (3 channels) and for a varying
gradient opacity |grad HU|, and the 1 to 4 float32 channels per voxel that the rays sample,
whose shading each frame writes anew. A DvrScene draws many frames, one at a time, or windows of
them (render(window=...): fine-tuning's targets), without computing the gradient again.
Measured (render_dvr, one frame): a 512 x 512 CT-Bone frame of the bundled 122 x 101 x 112 CT
(1.5 mm step) raises the process's peak memory by 73 MB (to 552 MB, most of it torch itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera
from ..errors import RenderFMError
from ..frame import MAX_IMAGE_SIDE, Frame, Progress, check_device
from ..network.inputs import gradient_ras
from ..transfer import Preset, load_preset
from ..volume import Volume
from .dvr_march import BACKENDS, Field, empty_bricks, empty_cells, march

DEFAULT_EARLY_STOP = 0.999
FLAT_GRADIENT = 1e-5
"""A voxel's gradient counts as zero below this fraction of the CT's HU range, per mm."""
RAYS_PER_CHUNK = 1 << 16


@dataclass(frozen=True)
class _Geometry:
    """The camera-independent channels, each [K, J, I] float32: HU, |grad HU| (HU/mm) when the
    preset's gradient opacity is not constant 1, and the unit normals [3, K, J, I] (grad / |grad|,
    zero where the gradient is flat) when it shades; upper, empty and bricks as in
    dvr_march.Field."""

    hu: torch.Tensor
    magnitude: torch.Tensor | None
    normals: torch.Tensor | None
    upper: torch.Tensor
    empty: torch.Tensor | None
    bricks: torch.Tensor | None


def render_dvr(
    ct: Volume,
    preset: Preset | str,
    camera: Camera,
    size: int | tuple[int, int],
    *,
    step_mm: float | None = None,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ambient_light: float = 0.0,
    early_stop: float = DEFAULT_EARLY_STOP,
    device: str | torch.device = "cpu",
    backend: str = "auto",
    progress: Progress | None = None,
) -> Frame:
    """Ray-march `ct` (HU, RAS mm) with `preset` seen from `camera` at `size` (side, or (width,
    height)) pixels.

    step_mm: the largest distance between samples (mm), by default half the smallest voxel
    spacing; background: RGB in [0, 1] behind the volume; ambient_light: the headlight's ambient
    intensity in [0, 1] (0 as in Slicer, where the preset's ambient term then has no effect; 1
    lights it fully); early_stop: a ray stops once its opacity reaches this (0 < early_stop <= 1);
    device: where to march (cpu or cuda); backend: "auto" (C++ on the CPU where it builds, else
    PyTorch), "torch" or "cpu" (dvr_march.py); progress(fraction, message): called per chunk of
    rays.
    Returns a Frame: rgb [H, W, 3] in [0, 1] with the background, alpha [H, W], depth [H, W]
    (expected depth in mm along the optical axis, 0 where alpha is 0).
    """
    scene = DvrScene(ct, preset, step_mm=step_mm, ambient_light=ambient_light,
                     early_stop=early_stop, device=device, backend=backend)
    return scene.render(camera, size, background=background, progress=progress)


class DvrScene:
    """`ct` (HU, RAS mm) and `preset` made ready for ray marching from many cameras (render_dvr's
    arguments; backend: dvr_march.march's, "auto" or "torch" or "cpu"): the HU, the unit normals
    (the camera-independent part of the shading) and the empty cells are computed once; each
    frame adds the headlight's shading."""

    def __init__(self, ct: Volume, preset: Preset | str, *, step_mm: float | None = None,
                 ambient_light: float = 0.0, early_stop: float = DEFAULT_EARLY_STOP,
                 device: str | torch.device = "cpu", backend: str = "auto") -> None:
        self.preset = preset if isinstance(preset, Preset) else load_preset(preset)
        if not 0.0 <= ambient_light <= 1.0:
            raise RenderFMError(f"ambient_light must be in [0, 1], not {ambient_light}")
        if not 0.0 < early_stop <= 1.0:
            raise RenderFMError(f"early_stop must be in (0, 1], not {early_stop}")
        self.ct, self.step, self.early_stop = ct, _step(ct, step_mm), early_stop
        self.ambient_light = ambient_light
        if backend not in BACKENDS:
            raise RenderFMError(f"the dvr backend must be auto, torch or cpu, not {backend!r}")
        self.backend = backend
        self.device = check_device(device)
        if backend == "cpu" and self.device.type != "cpu":
            raise RenderFMError(f"the dvr backend 'cpu' marches on the CPU, not on {self.device}")
        self.geometry = _geometry(ct, self.preset, self.device)
        self._channels = _sampled_channels(self.geometry)

    def render(self, camera: Camera, size: int | tuple[int, int], *,
               window: tuple[int, int, int] | None = None,
               background: tuple[float, float, float] = (0.0, 0.0, 0.0),
               progress: Progress | None = None) -> Frame:
        """The frame of `camera` at `size` pixels (render_dvr's), or only its pixels
        [x0, x0 + side) x [y0, y0 + side) for window (x0, y0, side): a side x side Frame."""
        width, height = _image_size(size)
        pixels = _window_pixels(window, width, height)
        backdrop = _background(background)
        field = _field(self.geometry, self.preset, _light(camera), self.ambient_light,
                       self._channels)
        origin, directions, z_per_mm = _rays(camera, width, height, pixels, self.ct, self.device)
        t_near, t_far = _clip(origin, directions, field.upper)
        count = len(directions)
        out = torch.zeros(count, 5, dtype=torch.float32, device=self.device)
        chunks = range(0, count, RAYS_PER_CHUNK)
        for number, start in enumerate(chunks):
            rays = slice(start, start + RAYS_PER_CHUNK)
            out[rays] = march(field, self.preset, origin, directions[rays], t_near[rays],
                              t_far[rays], self.step, self.early_stop, self.backend)
            if progress is not None:
                progress((number + 1) / len(chunks), "ray marching")
        colour, alpha = out[:, :3].clamp(0.0, 1.0), out[:, 3]
        rgb = colour + (1.0 - alpha[:, None]) * backdrop.to(self.device)
        depth = torch.where(alpha > 0, out[:, 4] * z_per_mm / alpha.clamp_min(1e-12), 0.0)
        rows, columns = pixels[3], pixels[2]
        return Frame(rgb.view(rows, columns, 3), alpha.view(rows, columns),
                     depth.view(rows, columns))


def _image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) from a side or a pair; RenderFMError outside 1..MAX_IMAGE_SIDE."""
    width, height = (size, size) if isinstance(size, int) else tuple(size)
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise RenderFMError(f"image size must be 1..{MAX_IMAGE_SIDE} pixels, not {width}x{height}")
    return int(width), int(height)


def _step(ct: Volume, step_mm: float | None) -> float:
    """The largest sample distance in mm: step_mm, or half the smallest voxel spacing."""
    if step_mm is None:
        return 0.5 * float(ct.spacing.min())
    if not (math.isfinite(step_mm) and step_mm > 0):
        raise RenderFMError(f"the ray-marching step must be a positive number of mm, not {step_mm}")
    return float(step_mm)


def _background(background: tuple[float, float, float]) -> torch.Tensor:
    """[3] RGB background, checked to be three numbers in [0, 1]."""
    values = torch.as_tensor(background, dtype=torch.float32)
    if values.shape != (3,) or not bool(((values >= 0) & (values <= 1)).all()):
        raise RenderFMError(f"background must be three numbers in [0, 1], not {background}")
    return values


def _light(camera: Camera) -> np.ndarray:
    """[3] unit vector from the focal point towards the camera (the headlight), RAS."""
    towards = np.subtract(camera.position, camera.focal_point)
    return towards / np.linalg.norm(towards)


def _window_pixels(window: tuple[int, int, int] | None, width: int, height: int
                   ) -> tuple[int, int, int, int]:
    """(x0, y0, columns, rows) of the pixels to render: the whole image, or window (x0, y0,
    side), which must lie inside it."""
    if window is None:
        return 0, 0, width, height
    x0, y0, side = (int(v) for v in window)
    if side < 1 or x0 < 0 or y0 < 0 or x0 + side > width or y0 + side > height:
        raise RenderFMError(f"window {tuple(window)} (x0, y0, side) is not inside the "
                            f"{width}x{height} image")
    return x0, y0, side, side


def _geometry(ct: Volume, preset: Preset, device: torch.device) -> _Geometry:
    """The camera-independent channels of ct on device (see _Geometry)."""
    hu = ct.array.to(device=device, dtype=torch.float32)
    magnitude, normals = None, None
    varies = any(factor != 1.0 for _, factor in preset.gradient_opacity)
    if varies or preset.shade:
        gradient = gradient_ras(Volume(hu, ct.ijk_to_ras))
        norm = torch.linalg.vector_norm(gradient, dim=0)
        if varies:
            magnitude = norm
        if preset.shade:
            lit = norm > FLAT_GRADIENT * float(hu.max() - hu.min())
            normals = torch.where(lit, gradient / norm.clamp_min(1e-30), 0.0)
    upper = torch.tensor([1.0 if n > 1 else -1.0 for n in hu.shape[::-1]], device=device)
    empty = empty_cells(hu, preset)
    return _Geometry(hu, magnitude, normals, upper, empty, empty_bricks(empty))


def _sampled_channels(geometry: _Geometry) -> torch.Tensor:
    """The [C, K, J, I] tensor the rays sample, which a DvrScene keeps from frame to frame: the
    geometry's channels written once, then room for the shading that each frame writes (_field).
    A new tensor per frame cost page faults and a copy of the HU: on POPI thorax (256 x 256 x 141
    voxels, CT-Bone) 110 MB a frame. So a DvrScene draws one frame at a time."""
    fixed = [geometry.hu] + ([] if geometry.magnitude is None else [geometry.magnitude])
    shading = 0 if geometry.normals is None else 2
    channels = geometry.hu.new_empty((len(fixed) + shading, *geometry.hu.shape))
    for index, channel in enumerate(fixed):
        channels[index] = channel
    return channels


def _field(geometry: _Geometry, preset: Preset, light: np.ndarray, ambient_light: float,
           channels: torch.Tensor) -> Field:
    """The field of one frame: channels [C, K, J, I] (_sampled_channels: the geometry's channels
    first) with the shading under `light` written into its last two, in place (no
    intermediate volumes: on a 256 x 256 x 141 CT, 0.2 s a frame as separate tensors stacked)."""
    fixed = 1 if geometry.magnitude is None else 2
    if geometry.normals is not None:
        _voxel_shading(preset, geometry.normals, light, ambient_light, channels[fixed:])
    return Field(channels[None], None if geometry.magnitude is None else 1,
                 fixed if geometry.normals is not None else None, geometry.upper, geometry.empty,
                 geometry.bricks)


def _voxel_shading(preset: Preset, normals: torch.Tensor, light: np.ndarray,
                   ambient_light: float, out: torch.Tensor) -> None:
    """Writes out[0] = diffuse and out[1] = specular, each [K, J, I]: two-sided headlight shading
    of every voxel; normals [3, K, J, I] unit (zero where the gradient is flat: no diffuse or
    specular light), light [3] unit (RAS). In place, pass by pass over the volume."""
    diffuse, specular = out[0], out[1]
    cosine = specular  # |n.l| first, raised to the specular power in place below
    torch.mul(normals[0], float(light[0]), out=cosine)
    cosine.add_(normals[1], alpha=float(light[1])).add_(normals[2], alpha=float(light[2])).abs_()
    torch.mul(cosine, preset.diffuse, out=diffuse).add_(preset.ambient * ambient_light)
    if preset.specular_power == 0:  # |n.l|^0 = 1, but a flat voxel still gets no specular light
        torch.mul(normals.abs().amax(0) > 0, preset.specular, out=specular)
    else:  # a flat voxel's |n.l| is 0, and so is its specular light
        cosine.pow_(preset.specular_power).mul_(preset.specular)


def _rays(
    camera: Camera, width: int, height: int, pixels: tuple[int, int, int, int], ct: Volume,
    device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rays through the pixels (x0, y0, columns, rows) of a width x height image, in
    grid_sample's normalised coordinates (voxel centre 0 at -1, n - 1 at +1 on each axis,
    ordered i, j, k), parametrised by the RAS distance t (mm) from the camera.

    Returns origin [3] (the camera centre), directions [rows * columns, 3] (normalised units per
    mm), and z_per_mm [rows * columns] (optical-axis depth per mm along each ray).
    """
    f64 = torch.float64
    intrinsics = camera.intrinsics(width, height)
    x0, y0, columns, rows = pixels
    v, u = torch.meshgrid(torch.arange(y0, y0 + rows, dtype=f64, device=device) + 0.5,
                          torch.arange(x0, x0 + columns, dtype=f64, device=device) + 0.5,
                          indexing="ij")
    x = (u - intrinsics[0, 2]) / intrinsics[0, 0]
    y = (v - intrinsics[1, 2]) / intrinsics[1, 1]
    in_camera = torch.stack([x, y, torch.ones_like(x)], dim=-1).reshape(-1, 3)
    length = torch.linalg.vector_norm(in_camera, dim=1)
    scale = 2.0 / np.maximum(np.array(ct.shape[::-1], dtype=np.float64) - 1.0, 1.0)
    ras_to_grid = np.diag([*scale, 1.0]) @ np.linalg.inv(ct.ijk_to_ras)
    ras_to_grid[:3, 3] -= 1.0
    # camera -> RAS is R^T; then RAS -> grid.
    camera_to_grid = ras_to_grid[:3, :3] @ camera.world_to_camera()[:3, :3].T
    rotation = torch.as_tensor(camera_to_grid.T, dtype=f64, device=device)
    directions = (in_camera / length[:, None]) @ rotation
    origin = ras_to_grid[:3, :3] @ np.asarray(camera.position) + ras_to_grid[:3, 3]
    origin_grid = torch.as_tensor(origin, dtype=f64, device=device).float()
    return origin_grid, directions.float(), (1.0 / length).float()


def _clip(
    origin: torch.Tensor, directions: torch.Tensor, upper: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t_near, t_far) [R] in mm where each ray is inside the voxel-centre box -1 .. upper;
    t_far <= t_near for rays that miss. Starts at the camera (t >= 0) when it is inside."""
    parallel = directions == 0
    safe = torch.where(parallel, torch.ones_like(directions), directions)
    t_low, t_high = (-1.0 - origin) / safe, (upper - origin) / safe
    inside = (origin >= -1.0) & (origin <= upper)
    infinity = torch.full_like(t_low, math.inf)
    enter = torch.where(parallel, torch.where(inside, -infinity, infinity),
                        torch.minimum(t_low, t_high))
    leave = torch.where(parallel, torch.where(inside, infinity, -infinity),
                        torch.maximum(t_low, t_high))
    return enter.amax(dim=1).clamp_min(0.0), leave.amin(dim=1)
