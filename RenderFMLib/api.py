"""The high-level API every front end uses (CLI, Slicer module, benchmarks): prepare() and render().

    gaussians = prepare("ct.nii.gz", segmentation="seg.nii.gz", preset="CT-Bone")
    frame = render(gaussians, default_camera(gaussians), 512)
    frame.save_png("out.png")
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from . import arguments as check
from .build import SLAB_VOXELS, build_gaussians, checked_groups
from .camera import Camera, camera_tensors, orbit_camera
from .crop import CropBox, clipped_splats, crop_box
from .errors import ArgumentTypeError, RenderFMError, RenderFMWarning
from .frame import MAX_IMAGE_SIDE, Frame, Progress, check_device, silent
from .gaussians import SixDGaussians
from .loading import compact_labels, load_ct, load_ct_as_read, load_labels, prepared_grid
from .memory import check_preparation
from .network.model import RenderFMNetwork
from .network.weights import SHIPPED, cached_network, resolve_weights
from .optimize.finetune import ITERATIONS, FinetuneOptions, FinetuneResult
from .optimize.finetune import finetune as _finetune
from .optimize.sampling import views_for
from .render.backends import pick as pick_renderer
from .resources import DEFAULT_PRESET
from .segmentation.classes import GROUPS, group_indices, labels_in_groups
from .transfer import Preset, load_preset
from .volume import Volume

__all__ = ["DEFAULT_PRESET", "MAX_IMAGE_SIDE", "CropBox", "FinetuneResult", "Frame",
           "Progress", "check_device", "check_finetune_target", "default_camera", "finetune",
           "load_ct", "load_ct_as_read", "prepare", "render", "shown"]


def prepare(
    ct: Volume | str | Path,
    segmentation: Volume | str | Path | None = None,
    preset: Preset | str | Path = DEFAULT_PRESET,
    *,
    groups: Iterable[str] | None = None,
    group_colors: bool = False,
    keep_labels: Iterable[int] | None = None,
    spacing_mm: float | None = None,
    hu_offset: float | None = None,
    weights: str | Path | None = SHIPPED,
    device: str | torch.device = "cpu",
    progress: Progress = silent,
) -> SixDGaussians:
    """Turn a CT into 6D Gaussians: Anatomy-Guided Priming plus the network's residuals.

    ct: a Volume (HU, RAS) or a path (NIfTI, NRRD, MHA or a DICOM folder).
    segmentation: a label map (TotalSegmentator's `total` numbering) as a Volume or a path (a
    multilabel file, a folder of per-class masks, a Slicer .seg.nrrd or a binary mask) on any
    overlapping grid; or "threshold" (HU thresholds, no weights needed), "auto" or "auto-fast"
    (run TotalSegmentator's full or fast model on `device`; needs its package and weights).
    preset: a bundled preset name, a preset file or a Preset.
    groups: keep only Gaussians of these anatomical groups (segmentation.GROUPS);
    group_colors: colour each group with its look (ivory bone, red vessels...) instead of the
    preset's colour; keep_labels: keep only Gaussians with these labels.
    spacing_mm: resample the CT to this isotropic spacing first (the paper uses 1.5; None: the
    CT's own grid, isotropic for thick slices, 2 mm for voxels over 3 mm: loading.default_spacing);
    hu_offset: added to stored values (e.g. -1024 for CT stored without rescale);
    weights: the network ("shipped": the bundled weights; a path to other .safetensors weights
    with their .json; None: AGP alone); WeightsError for missing, damaged or mismatched weights;
    progress(fraction, message). Arguments of the wrong type or out of range raise
    ArgumentTypeError / ArgumentError (TypeError / ValueError) naming them.
    """
    _check_sources(ct, segmentation, preset, progress)
    group_colors = check.flag("prepare", "group_colors", group_colors)
    groups = None if groups is None else check.group_names("prepare", "groups", groups)
    if keep_labels is not None:
        keep_labels = check.labels("prepare", "keep_labels", keep_labels)
    spacing_mm, hu_offset = _checked_numbers(spacing_mm, hu_offset)
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    device = check_device(device)
    groups = checked_groups(segmentation is not None, groups, keep_labels, group_colors)
    network = _network(weights, device)
    progress(0.0, "reading the CT")
    volume = load_ct(ct, hu_offset, spacing_mm, device)
    check_preparation(volume.array.numel(), segmentation, SLAB_VOXELS)
    labels = None
    if segmentation is not None:
        progress(0.2, "segmenting" if segmentation in SEGMENTERS else "reading the segmentation")
        labels = load_labels(segmentation, volume, device)
        labels = Volume(compact_labels(labels.array).to(device), labels.ijk_to_ras)
    progress(0.4, "priming Gaussians")
    gaussians = build_gaussians(volume, labels, preset, network=network, groups=groups,
                                group_colors=group_colors, keep_labels=keep_labels)
    del volume, labels  # a clinical CT and its labels take GBs: free them before the next step
    progress(0.9, "precomputing slicing terms")
    gaussians.derived()
    progress(1.0, f"{len(gaussians)} Gaussians")
    return gaussians


SEGMENTERS = ("threshold", "auto", "auto-fast")
_CT = "a Volume (HU, RAS mm) or a path (str or os.PathLike) to a CT file or DICOM folder"
_SEGMENTATION = ("None, a Volume of labels, a path (str or os.PathLike) to a segmentation, or "
                 "one of " + ", ".join(SEGMENTERS))
_PRESET = "a Preset, a bundled preset's name or a preset file's path"


def _check_sources(ct: object, segmentation: object, preset: object, progress: object) -> None:
    """prepare's ct, segmentation, preset and progress: of a kind it takes (the paths non-empty:
    "" would be the working folder)."""
    if not isinstance(ct, Volume):
        check.path("prepare", "ct", ct, _CT)
    if segmentation is not None and not isinstance(segmentation, Volume):
        check.path("prepare", "segmentation", segmentation, _SEGMENTATION)
    if not isinstance(preset, Preset):
        check.path("prepare", "preset", preset, _PRESET)
    if not callable(progress):
        raise ArgumentTypeError("prepare: progress must be a function progress(fraction, message)")


def _network(weights: object, device: torch.device) -> RenderFMNetwork | None:
    """prepare's network: the weights' (loaded once per file), or None for AGP alone."""
    if weights is not None and not isinstance(weights, (str, Path)):
        raise ArgumentTypeError(f"prepare: weights must be {SHIPPED!r}, None or a path to "
                                f"network weights (.safetensors), not {check.describe(weights)}")
    path = resolve_weights(weights)
    return None if path is None else cached_network(path, device)


def _checked_numbers(spacing_mm: object, hu_offset: object) -> tuple[float | None, float | None]:
    """prepare's spacing_mm (None or > 0 mm) and hu_offset (None or finite HU) as floats."""
    spacing = None if spacing_mm is None else \
        check.number("prepare", "spacing_mm", spacing_mm, "None or a positive number of mm", True)
    offset = None if hu_offset is None else \
        check.number("prepare", "hu_offset", hu_offset, "None or a finite number of HU")
    return spacing, offset


def finetune(
    gaussians: SixDGaussians,
    ct: Volume | str | Path | None = None,
    *,
    target: str | Path = "dvr",
    size: int = 512,
    heldout_size: int = 512,
    iterations: int = ITERATIONS,
    budget_s: float | None = 300.0,
    crop: int | None = None,
    densify: bool = False,
    seed: int = 0,
    hu_offset: float | None = None,
    spacing_mm: float | None = None,
    progress: Progress = silent,
    should_stop: Callable[[], bool] = lambda: False,
) -> FinetuneResult:
    """Optimise one scan's Gaussians against target views of it (optimize/finetune.py).

    ct: the CT the Gaussians were prepared from (a Volume in HU or a path, read with hu_offset and
    resampled to spacing_mm as prepare() did, to check that it is); needed for target "dvr", which
    renders from the CT on its own grid, as Slicer draws it, never resampled: 6 held-out views (4
    orbit, 2 close-ups; never trained on) at heldout_size, and each step a crop x crop window of a
    random view (any azimuth, elevations up to 60 degrees, a quarter of them close-ups) of size / 2
    to size pixels, a new one every third step (else one of the last 64; every step for windows of
    256 px or more); crop None: 128 px up to 40,000 Gaussians, growing with the square root of their
    count up to 512 (sampling.window_side). target may instead be a `make-gt` settings
    folder (dvr or pathtraced images of this scan and preset; every 4th view is held out, the
    others are cut into windows). iterations and budget_s (seconds for the whole call: held-out
    targets, optimisation and scoring; None: no limit) end the run, as do should_stop() and
    Ctrl-C. Returns a FinetuneResult (.gaussians, held-out .before / .after scores, steps,
    seconds, why it stopped).
    """
    started = time.monotonic()
    check_finetune_target(target)
    _check_finetune_numbers(iterations, budget_s, size, heldout_size, crop)
    volume = None
    if str(target) == "dvr":
        if ct is None:
            raise RenderFMError("fine-tuning against dvr needs the CT the Gaussians came from")
        volume = load_ct_as_read(ct, hu_offset, gaussians.device)  # the look Slicer draws
        _check_same_ct(gaussians, volume, spacing_mm)
    train, heldout = views_for(gaussians, volume, str(target), size=size, crop=crop,
                               heldout_size=heldout_size, seed=seed,
                               progress=lambda f, m: progress(0.1 * f, m))
    options = FinetuneOptions(iterations, budget_s, densify, seed=seed)
    return _finetune(gaussians, train, heldout, options, started=started,
                     progress=lambda f, m: progress(0.1 + 0.9 * f, m), should_stop=should_stop)


def check_finetune_target(target: str | Path) -> None:
    """RenderFMError unless target is "dvr" or an existing folder (a make-gt settings folder;
    read later); call it before preparing, so a wrong target costs no work."""
    if str(target) == "pathtraced":
        raise RenderFMError("the pathtraced target is read from a make-gt folder: run "
                            "`renderfm make-gt --renderer pathtraced` and give its "
                            "OUT/<scan>/<preset>/pathtraced-<size>px-<spp>spp folder as target")
    if str(target) != "dvr" and not Path(target).is_dir():
        raise RenderFMError(f"unknown target '{target}': use dvr, or a make-gt folder")


def _check_finetune_numbers(iterations: int, budget_s: float | None, size: int,
                            heldout_size: int, crop: int | None) -> None:
    """RenderFMError naming the first argument out of range."""
    checks = [("iterations", iterations, iterations >= 0),
              ("budget_s", budget_s, budget_s is None or budget_s > 0),
              ("size", size, 16 <= size <= MAX_IMAGE_SIDE),
              ("heldout_size", heldout_size, 16 <= heldout_size <= MAX_IMAGE_SIDE),
              ("crop", crop, crop is None or 16 <= crop)]
    for name, value, ok in checks:
        if not ok:
            raise RenderFMError(f"finetune: {name} out of range ({value}); iterations >= 0, "
                                "budget_s > 0, sizes 16..8192, crop >= 16")


def _check_same_ct(gaussians: SixDGaussians, volume: Volume, spacing_mm: float | None) -> None:
    """RenderFMError unless the Gaussians were prepared from `volume` (as read) on the grid
    prepare() puts it on for spacing_mm or, without spacing_mm, on its own grid (the default for
    coarse CTs before they were read on 2 mm)."""
    ijk_to_ras, shape = prepared_grid(volume, spacing_mm)
    grids = [(ijk_to_ras, shape)]
    if spacing_mm is None:
        grids.append((np.asarray(volume.ijk_to_ras), volume.shape))
    if not any(tuple(grid_shape) == tuple(gaussians.volume_shape)
               and np.allclose(grid, gaussians.ijk_to_ras, atol=1e-3)
               for grid, grid_shape in grids):
        raise RenderFMError(
            f"the CT (grid {list(shape)}) is not the one these Gaussians were prepared from "
            f"(grid {list(gaussians.volume_shape)}, or another position); give that CT, with the "
            "same --spacing")


def default_camera(
    gaussians: SixDGaussians, azimuth: float = 0.0, elevation: float = 0.0, view_angle: float = 30.0
) -> Camera:
    """An orbit camera around the source CT that frames its bounding sphere
    (camera.orbit_camera)."""
    check.instance("default_camera", "gaussians", gaussians, SixDGaussians, _GAUSSIANS)
    return orbit_camera(gaussians.center_ras(), gaussians.bounding_radius(), azimuth, elevation,
                        view_angle)


def shown(
    gaussians: SixDGaussians,
    hidden_groups: Iterable[str] | str = (),
    visible_labels: Iterable[int] | int | None = None,
) -> SixDGaussians:
    """The Gaussians left after hiding anatomical groups (one name, or several) and keeping only
    visible_labels (one label, or several)."""
    return _shown("shown", gaussians, hidden_groups, visible_labels)


_GAUSSIANS = "SixDGaussians (from prepare or SixDGaussians.load)"


def _shown(function: str, gaussians: SixDGaussians, hidden_groups: object,
           visible_labels: object) -> SixDGaussians:
    """shown(), its arguments checked in the name of `function`."""
    check.instance(function, "gaussians", gaussians, SixDGaussians, _GAUSSIANS)
    hidden = set() if hidden_groups is None else \
        set(check.group_names(function, "hidden_groups", hidden_groups))
    if hidden and len(gaussians):
        labels_in_groups(hidden)  # SegmentationError for an unknown group name
        indices = torch.tensor([GROUPS.index(group) for group in hidden], device=gaussians.device)
        gaussians = gaussians.select(~torch.isin(group_indices(gaussians.labels), indices))
    if visible_labels is not None:
        visible = set(check.labels(function, "visible_labels", visible_labels))
        allowed = torch.tensor(sorted(visible), dtype=torch.int64, device=gaussians.device)
        gaussians = gaussians.select(torch.isin(gaussians.labels, allowed))
    return gaussians


def render(
    gaussians: SixDGaussians,
    camera: Camera | Mapping,
    size: int | tuple[int, int],
    *,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    hidden_groups: Iterable[str] | str = (),
    visible_labels: Iterable[int] | int | None = None,
    crop: CropBox | Iterable[float] | None = None,
    backend: Literal["auto", "torch", "cpu", "cuda"] = "auto",
) -> Frame:
    """Render the Gaussians seen from `camera` at `size` (side, or (width, height)) pixels.

    camera: a Camera or a dict of its terms (Camera.from_dict); size: integers (NumPy's too);
    background: RGB, 3 numbers in 0..1. Differentiable with respect to the Gaussians' parameters.
    hidden_groups: leave out the Gaussians of these anatomical groups (a single name is one
    group, not letters); visible_labels: draw only Gaussians whose segmentation label is in this
    set (or is this label); crop: draw only what lies inside this box (a CropBox, which may be
    rotated like Slicer's markups ROI, or R_MIN, R_MAX, A_MIN, A_MAX, S_MIN, S_MAX in RAS mm),
    the Gaussians its faces cut clipped there (render/clip.py); a box that holds nothing gives
    an empty frame and a RenderFMWarning. None of these needs a new preparation.
    backend: "cuda" the CUDA kernels (render/cuda; needs CuPy and the Gaussians as float32 on a
    CUDA device), "cpu" the CPU kernels (render/cpu; float32 Gaussians on the CPU, built once with
    the machine's C++ compiler), "torch" the PyTorch reference (any device), "auto" the kernels
    for the Gaussians' device where they can run, else torch (saying why once, through
    logging); render/backends.py. Arguments of the wrong type or out
    of range raise ArgumentTypeError / ArgumentError (TypeError / ValueError) naming them.
    """
    check.instance("render", "gaussians", gaussians, SixDGaussians, _GAUSSIANS)
    camera = _camera("render", camera)
    width, height = check.image_size("render", size)
    background = check.rgb("render", "background", background)
    box = None if crop is None else crop_box("render", "crop", crop)
    renderer = pick_renderer(backend, gaussians.device, gaussians.means.dtype)
    gaussians = _shown("render", gaussians, hidden_groups, visible_labels)
    dtype = gaussians.means.dtype
    world_to_camera, intrinsics, centre = camera_tensors(camera, width, height, gaussians.device,
                                                         dtype)
    splats = _splats(gaussians, box, centre)
    rgb, alpha, depth = renderer(
        *splats, world_to_camera, intrinsics, centre, width, height,
        torch.tensor(background, dtype=dtype, device=gaussians.device),
    )
    return Frame(rgb, alpha, depth)


def _splats(gaussians: SixDGaussians, box: CropBox | None, centre: torch.Tensor
            ) -> tuple[torch.Tensor, ...]:
    """The renderers' per-Gaussian inputs, cropped to box (None: all); warns when the box holds
    none of the Gaussians."""
    if box is not None:
        splats = clipped_splats(gaussians, box, centre)
        if len(gaussians) and not len(splats[0]):
            warnings.warn(RenderFMWarning(f"the crop box holds none of the {len(gaussians)} "
                                          "Gaussians: the frame is empty"), stacklevel=3)
        return splats
    s_c, gains, s_dd_inv = gaussians.derived()
    return (gaussians.means, gaussians.dir_means, s_c, gains, s_dd_inv,
            gaussians.opacity_logits, gaussians.rgb, gaussians.sh, gaussians.specular_sh)


def _camera(function: str, camera: object) -> Camera:
    """camera as a Camera: one, or a dict of its terms."""
    if isinstance(camera, Mapping):
        return Camera.from_dict(camera)
    if not isinstance(camera, Camera):
        raise ArgumentTypeError(f"{function}: camera must be a Camera or a dict of its terms "
                                "(position, focal_point, view_up, view_angle), not "
                                f"{check.describe(camera)}; api.default_camera(gaussians) gives "
                                "the orbit view")
    return camera
