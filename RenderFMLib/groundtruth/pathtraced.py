"""The photorealistic reference: Mitsuba 3 volumetric path tracing of the CT (`volpath`).

Medium. The CT is a heterogeneous participating medium in patient RAS millimetres. Extinction
sigma_t(x) = density_scale * -ln(1 - a(x)) per mm, where a = scalar opacity(HU) x gradient
factor(|grad HU|) is the preset's opacity per mm (inputs.voxel_opacity), clamped to MAX_OPACITY:
VTK's per-mm opacity a lets (1 - a) of the light through per mm, so with density_scale 1 the
transmittance exp(-integral sigma_t ds) is the per-millimetre rule of Slicer's CPU ray cast and of
the dvr renderer (DESIGN.md section 3). Single-scattering albedo = the preset colour, read as an
sRGB display colour and decoded to linear RGB. Both are computed per voxel (pre-classification,
where dvr interpolates HU first) and interpolated trilinearly by Mitsuba `gridvolume` textures.
Phase function: isotropic. The grid is the CT's own; only a grid of more than MAX_GRID_VOXELS
voxels is halved (2x2x2 blocks: mean sigma_t, albedo weighted by sigma_t), for memory: the cost
of tracing does not depend on the voxel count (see Cost).

Geometry. The grid fills a `cube` with a null BSDF whose interior is the medium, placed by the
CT's ijk_to_ras (the box from voxel index -0.5 to n - 0.5, as volume.py defines it). Mitsuba
drops the interior medium of a cube whose to_world has a negative determinant, so a grid with
det(ijk_to_ras) < 0 is mirrored first: the array's i axis is reversed and ijk_to_ras composed
with i -> (n_i - 1) - i, so every voxel keeps its RAS position and the picture is unchanged. The
camera is a Mitsuba `perspective` sensor, to_world = look_at(position, focal point, view up),
vertical field of view = view_angle, principal point at the image centre: a RAS point lands where
Camera.intrinsics and world_to_camera (OpenCV pinhole, camera.py) put it (tested to 1 px). A
camera inside the CT's box starts its rays in the medium. The film's box filter makes a pixel the
average over its own area.

Lighting (what "photorealistic" means here). Both lights are white and follow the camera, so
every view of an orbit is lit alike:
- environment: constant radiance ENVIRONMENT_RADIANCE = 0.25 from every direction (a soft sky
  that fills shadows and lights what the key light cannot reach);
- key: a `directional` light of irradiance KEY_IRRADIANCE = 6.0 (on a plane facing it) from
  the viewer's upper left and front, along right * -1 + up * 1 + toward-viewer * 1 (normalized,
  55 degrees off the viewing axis) in the camera's frame.
Exposure, measured on a thick cube (sigma_t 1.26 / mm, 100 mm) facing the camera: albedo 1
(white) gives linear radiance 1.06, display white; linear albedo 0.79 (sRGB 0.9) gives 0.37
(display 0.64), 0.45 (sRGB 0.7) gives 0.13 (display 0.40): multiple scattering makes a volume's
brightness fall steeply with its albedo, so colours come out darker and more saturated than the
same preset in dvr. Emitters seen directly are hidden, so where the medium
lets light through, the background shows.

Path tracing. `volpath`, at most max_depth scattering events per path (16 by default: on the
sample CT, display values are within 0.5 % of max_depth 32, and 8 loses 2.4 %), and Russian
roulette only after max_depth + 1 events, i.e. never: roulette on the null-collision steps of
delta tracking turns into fireflies. Sampler: `independent`, seeded per pass from `seed`.

Output. The linear radiance L (premultiplied: the hidden environment contributes nothing) and
alpha, the fraction of samples whose camera ray met the medium (an unbiased estimate of 1 - T,
standard deviation at most 0.5 / sqrt(spp)). The background (an sRGB display colour) is composited
in linear light, L + (1 - alpha) * background, clamped to [0, 1] (no other tone mapping) and
encoded with the sRGB curve: display RGB in [0, 1], as the Gaussian and dvr renderers give.

Cost. Null-collision tracking steps against one global majorant, the largest sigma_t in the grid:
a ray takes about majorant x path length steps (CT-Bone: 1.26 / mm, a few hundred steps across a
torso), for every scattering event and every shadow ray. More than LANES_PER_PASS pixel samples
are traced in several passes (memory), each reporting progress.

Reproducibility. The same seed, spp, variant and Dr.Jit thread count give a bit-identical image.
`threads` sets the thread count for the render and restores it after; llvm_ad_rgb's images
change with it, scalar_rgb's do not (measured).

Mitsuba is loaded by mitsuba_loader.py (which variant, which libLLVM).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera
from ..errors import RenderFMError
from ..network.inputs import gradient_ras, voxel_opacity
from ..transfer import Preset, load_preset
from ..volume import Volume, grid_corners_ras
from .mitsuba_loader import import_mitsuba

MAX_OPACITY = 0.999
"""Per-mm opacity clamp: sigma_t <= -ln(1 - 0.999) = 6.9 / mm (times density_scale)."""
ENVIRONMENT_RADIANCE = 0.25
"""Constant white radiance of the environment light (linear RGB)."""
KEY_IRRADIANCE = 6.0
"""White irradiance of the directional key light (linear RGB, per unit area facing it)."""
KEY_FROM_CAMERA = (-1.0, 1.0, 1.0)
"""Where the key light comes from in the camera frame (right, up, toward the viewer)."""
MAX_GRID_VOXELS = 2**25
"""Larger grids are halved (2x2x2 blocks) until they fit: about 0.5 GB of float32 textures."""
LANES_PER_PASS = 2**22
"""Pixel samples traced at once (Dr.Jit wavefront size); more samples run in several passes."""
MAX_IMAGE_SIDE = 8192

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class PathTracedImage:
    """A path-traced image.

    rgb: [H, W, 3] float32 display sRGB in [0, 1], background composited.
    alpha: [H, W] float32 in [0, 1], the fraction of samples that met the medium (~ 1 - T).
    radiance: [H, W, 3] float32 linear RGB radiance of the medium alone (premultiplied, HDR).
    variant: the Mitsuba variant that rendered it.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    radiance: np.ndarray
    variant: str


def srgb_to_linear(srgb: torch.Tensor) -> torch.Tensor:
    """Decode sRGB display values in [0, 1] to linear RGB (IEC 61966-2-1)."""
    return torch.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Clamp linear RGB to [0, 1] and encode it with the sRGB curve (IEC 61966-2-1)."""
    x = linear.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _positive_orientation(grids: list[torch.Tensor], ijk_to_ras: np.ndarray):
    """The grids ([K, J, I, ...]) with the i axis reversed, and the matching ijk_to_ras, when
    det(ijk_to_ras) < 0, so every voxel keeps its RAS position and the determinant is positive."""
    if np.linalg.det(ijk_to_ras[:3, :3]) > 0:
        return grids, ijk_to_ras
    columns = grids[0].shape[2]
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    mirror[0, 3] = columns - 1
    return [g.flip(2) for g in grids], ijk_to_ras @ mirror


def _block_means(channels: torch.Tensor) -> torch.Tensor:
    """[C, K, J, I] -> [C, ceil(K/2), ceil(J/2), ceil(I/2)] means of 2x2x2 blocks; odd sizes are
    padded by repeating the last voxel."""
    pads = [0, channels.shape[3] % 2, 0, channels.shape[2] % 2, 0, channels.shape[1] % 2]
    padded = torch.nn.functional.pad(channels[None], pads, mode="replicate")
    return torch.nn.functional.avg_pool3d(padded, 2)[0]


def _halved(sigma_t: torch.Tensor, albedo: torch.Tensor, ijk_to_ras: np.ndarray):
    """The medium on a grid of 2x2x2 blocks: mean sigma_t, albedo weighted by sigma_t."""
    sigma_pooled = _block_means(sigma_t[None])[0]
    colour = albedo.permute(3, 0, 1, 2)
    weighted = _block_means(colour * sigma_t) / sigma_pooled.clamp_min(1e-12)
    albedo = torch.where(sigma_pooled > 0, weighted, _block_means(colour)).permute(1, 2, 3, 0)
    coarse = np.diag([2.0, 2.0, 2.0, 1.0])
    coarse[:3, 3] = 0.5
    return sigma_pooled, albedo.clamp(0, 1), ijk_to_ras @ coarse


def medium_grids(ct: Volume, preset: Preset,
                 density_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The medium on a voxel grid: (sigma_t [K, J, I] in 1/mm, albedo [K, J, I, 3] linear RGB,
    ijk_to_ras [4, 4] with a positive determinant), float32 on the CPU.

    sigma_t = density_scale * -ln(1 - min(a, MAX_OPACITY)), a the preset's per-mm opacity x
    gradient factor; albedo = the preset colour decoded from sRGB. The grid is the CT's
    (mirrored if det < 0), halved while it has more than MAX_GRID_VOXELS voxels.
    """
    hu = ct.array.to(device="cpu", dtype=torch.float32)
    ct = Volume(hu, ct.ijk_to_ras)
    opacity = voxel_opacity(preset, hu, gradient_ras(ct)).clamp(0.0, MAX_OPACITY)
    sigma_t = -float(density_scale) * torch.log1p(-opacity)
    albedo = srgb_to_linear(preset.rgb(hu))
    (sigma_t, albedo), ijk_to_ras = _positive_orientation([sigma_t, albedo], ct.ijk_to_ras)
    while sigma_t.numel() > MAX_GRID_VOXELS:
        sigma_t, albedo, ijk_to_ras = _halved(sigma_t, albedo, ijk_to_ras)
    return sigma_t.contiguous(), albedo.contiguous(), ijk_to_ras


def _unit_cube_to_ras(ijk_to_ras: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """[4, 4] texture coordinates u in [0, 1]^3 (x along i) -> RAS mm, ijk = u * n - 0.5."""
    to_ijk = np.diag([*map(float, shape[::-1]), 1.0])
    to_ijk[:3, 3] = -0.5
    return ijk_to_ras @ to_ijk


def _medium(mi, sigma_t: torch.Tensor, albedo: torch.Tensor, unit_to_ras: np.ndarray) -> dict:
    """The heterogeneous medium: sigma_t and albedo grid textures, isotropic phase."""
    to_world = mi.ScalarTransform4f(unit_to_ras.astype(np.float32))

    def texture(values: torch.Tensor) -> dict:
        return {"type": "gridvolume", "grid": mi.VolumeGrid(values.numpy()),
                "to_world": to_world, "filter_type": "trilinear"}

    return {"type": "heterogeneous", "sigma_t": texture(sigma_t[..., None]),
            "albedo": texture(albedo), "scale": 1.0, "phase": {"type": "isotropic"}}


def _sensor(mi, camera: Camera, width: int, height: int, far_mm: float) -> dict:
    """A pinhole sensor matching Camera (vertical fov = view_angle) with a box-filtered film."""
    return {
        "type": "perspective", "fov": float(camera.view_angle), "fov_axis": "y",
        "near_clip": 1e-2, "far_clip": far_mm,
        "to_world": mi.ScalarTransform4f().look_at(
            origin=list(camera.position), target=list(camera.focal_point), up=list(camera.view_up)),
        "film": {"type": "hdrfilm", "width": width, "height": height, "pixel_format": "rgba",
                 "rfilter": {"type": "box"}, "sample_border": False},
        "sampler": {"type": "independent"},
    }


def key_light_direction(camera: Camera) -> np.ndarray:
    """[3] unit RAS direction in which the key light travels (from KEY_FROM_CAMERA)."""
    eye_to_ras = camera.view_matrix()[:3, :3].T  # columns: right, up, backward (toward viewer)
    toward_light = eye_to_ras @ np.asarray(KEY_FROM_CAMERA, dtype=np.float64)
    return -toward_light / np.linalg.norm(toward_light)


def _inside(point: np.ndarray, ijk_to_ras: np.ndarray, shape: tuple[int, int, int]) -> bool:
    """Whether a RAS point (mm) lies in the grid's box (voxel index -0.5 .. n - 0.5)."""
    ijk = np.linalg.solve(ijk_to_ras[:3, :3], np.asarray(point, float) - ijk_to_ras[:3, 3])
    return bool(np.all((ijk >= -0.5) & (ijk <= np.array(shape[::-1]) - 0.5)))


def _scene(mi, grids, camera: Camera, width: int, height: int, max_depth: int):
    """The Mitsuba scene: the CT's medium in a cube, the two lights, the sensor, volpath.

    A camera inside the CT's box starts its rays in the medium.
    """
    sigma_t, albedo, ijk_to_ras = grids
    shape = tuple(sigma_t.shape)
    unit_to_ras = _unit_cube_to_ras(ijk_to_ras, shape)
    cube_to_unit = np.array([[0.5, 0, 0, 0.5], [0, 0.5, 0, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0, 1]])
    corners = grid_corners_ras(ijk_to_ras, shape)
    far_mm = 2.0 * float(np.linalg.norm(corners - np.asarray(camera.position), axis=1).max()) + 1.0
    sensor = _sensor(mi, camera, width, height, far_mm)
    if _inside(np.asarray(camera.position), ijk_to_ras, shape):
        sensor["medium"] = {"type": "ref", "id": "ct_medium"}
    return mi.load_dict({
        "type": "scene",
        "integrator": {"type": "volpath", "max_depth": max_depth, "rr_depth": max_depth + 1,
                       "hide_emitters": True},
        "ct_medium": {**_medium(mi, sigma_t, albedo, unit_to_ras), "id": "ct_medium"},
        "sensor": sensor,
        "environment": {"type": "constant",
                        "radiance": {"type": "rgb", "value": [ENVIRONMENT_RADIANCE] * 3}},
        "key": {"type": "directional", "direction": key_light_direction(camera).tolist(),
                "irradiance": {"type": "rgb", "value": [KEY_IRRADIANCE] * 3}},
        "ct": {"type": "cube", "bsdf": {"type": "null"},
               "to_world": mi.ScalarTransform4f((unit_to_ras @ cube_to_unit).astype(np.float32)),
               "interior": {"type": "ref", "id": "ct_medium"}},
    })


def _passes(spp: int, pixels: int) -> list[int]:
    """Samples per pixel of each pass, so that no pass traces more than LANES_PER_PASS."""
    per_pass = max(1, min(spp, LANES_PER_PASS // pixels))
    return [per_pass] * (spp // per_pass) + ([spp % per_pass] if spp % per_pass else [])


def _check(spp: int, seed: int, max_depth: int, density_scale: float, threads: int | None,
           background) -> torch.Tensor:
    """RenderFMError for a bad setting; the background as a [3] float64 tensor."""
    for name, value, low in (("spp", spp, 1), ("seed", seed, 0), ("max_depth", max_depth, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RenderFMError(f"{name} must be an integer >= {low}, not {value!r}")
    if seed >= 2**32:
        raise RenderFMError(f"seed must be below 2**32, not {seed}")
    if not (isinstance(density_scale, (int, float)) and math.isfinite(density_scale)
            and density_scale >= 0):
        raise RenderFMError(f"density_scale must be a finite number >= 0, not {density_scale}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise RenderFMError(f"threads must be a positive integer or None, not {threads!r}")
    try:
        colour = torch.as_tensor(background, dtype=torch.float64)
    except (TypeError, ValueError):
        colour = torch.empty(0)
    if colour.shape != (3,) or not bool(((colour >= 0) & (colour <= 1)).all()):
        raise RenderFMError(f"background must be 3 numbers in [0, 1], not {background!r}")
    return colour


def _silent(fraction: float, message: str) -> None:
    """The default progress callback: ignores (fraction in [0, 1], message)."""


def render_pathtraced(
    ct: Volume,
    preset: Preset | str,
    camera: Camera,
    size: int | tuple[int, int],
    *,
    spp: int = 64,
    seed: int = 0,
    max_depth: int = 16,
    density_scale: float = 1.0,
    variant: str | None = None,
    threads: int | None = None,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    progress: Progress = _silent,
) -> PathTracedImage:
    """Path-trace `ct` (HU, RAS mm) with `preset` seen from `camera` (see the module docstring).

    size: side, or (width, height), in pixels; spp: samples per pixel; seed: the sampler seed
    (0 .. 2**32 - 1); max_depth: the most scattering events per path; density_scale multiplies
    sigma_t (1: the per-mm opacity rule); variant: one of mitsuba_loader.VARIANTS, None for
    cuda_ad_rgb when a CUDA GPU works, else llvm_ad_rgb; threads: Dr.Jit CPU threads for this
    render (None: as set; llvm_ad_rgb repeats an image only with the same thread count);
    background: sRGB display colour behind the CT; progress(fraction, message) after each pass.
    Returns rgb, alpha and linear radiance (PathTracedImage).
    """
    width, height = (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(n, int) and 0 < n <= MAX_IMAGE_SIDE for n in (width, height)):
        raise RenderFMError(f"image size must be 1..{MAX_IMAGE_SIDE} pixels, not {size!r}")
    backdrop = _check(spp, seed, max_depth, density_scale, threads, background)
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    mi, variant = import_mitsuba(variant)
    scene = _scene(mi, medium_grids(ct, preset, density_scale), camera, width, height, max_depth)
    rgba = _trace(mi, scene, spp, seed, threads, progress)
    alpha = rgba[..., 3].clamp(0.0, 1.0)
    linear = rgba[..., :3] + (1.0 - alpha[..., None]) * srgb_to_linear(backdrop)
    return PathTracedImage(linear_to_srgb(linear).float().numpy(), alpha.float().numpy(),
                           rgba[..., :3].float().numpy(), variant)


def _trace(mi, scene, spp: int, seed: int, threads: int | None, progress: Progress):
    """[H, W, 4] float64 mean of the film's RGBA over spp samples, traced in passes."""
    import drjit as dr

    film = scene.sensors()[0].film().size()
    passes = _passes(spp, int(film[0]) * int(film[1]))
    seeds = np.random.SeedSequence(seed).generate_state(len(passes))
    previous = dr.thread_count()
    total: float | torch.Tensor = 0.0
    try:
        if threads is not None:
            dr.set_thread_count(threads)
        for number, (samples, pass_seed) in enumerate(zip(passes, seeds)):
            image = mi.render(scene, seed=int(pass_seed), spp=samples)
            total = total + samples * torch.from_numpy(np.array(image, dtype=np.float64))
            progress((number + 1) / len(passes),
                     f"path tracing: {sum(passes[:number + 1])}/{spp} samples per pixel")
    finally:
        dr.set_thread_count(previous)
    return total / spp
