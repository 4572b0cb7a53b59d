"""The ground-truth renderers behind one call, for `renderfm compare` and `renderfm make-gt`.

    dvr          emission-absorption ray marching, Slicer's CPU ray cast model (dvr.py)
    pathtraced   Mitsuba 3 volumetric path tracing, the photorealistic target (pathtraced.py)
    slicer-cpu   Slicer's own CPU ray cast, headless (slicer_native.py; needs renderfm[slicer])
    slicer-gpu   Slicer's own GPU ray cast: opacity per voxel, not per mm (DESIGN.md section 3)

Each renders a CT (HU, RAS mm) with a preset from a list of cameras and gives display RGB in
[0, 1]; the optional ones say why they cannot run (groundtruth_problem) instead of failing late.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..camera import Camera
from ..errors import RenderFMError
from ..frame import Progress
from ..transfer import Preset
from ..volume import Volume

GROUNDTRUTH_RENDERERS = {
    "dvr": "ray marching (Slicer's CPU ray cast model)",
    "pathtraced": "Mitsuba volumetric path tracing",
    "slicer-cpu": "Slicer CPU ray cast (opacity per mm)",
    "slicer-gpu": "Slicer GPU ray cast (opacity per voxel, Slicer issue #3716)",
}



@dataclass(frozen=True)
class GroundTruthImage:
    """rgb [H, W, 3] float32 display RGB in [0, 1], background included; alpha [H, W] coverage
    in [0, 1], or None where the renderer does not give it (Slicer's views)."""

    rgb: np.ndarray
    alpha: np.ndarray | None


def groundtruth_problem(name: str) -> str | None:
    """None when reference `name` can run here, else the reason (a missing package)."""
    if name not in GROUNDTRUTH_RENDERERS:
        raise RenderFMError(f"unknown ground-truth renderer '{name}'; choose from "
                            f"{', '.join(GROUNDTRUTH_RENDERERS)}")
    if name == "pathtraced":
        return _path_tracer_problem()
    if name.startswith("slicer-") and importlib.util.find_spec("slicer") is None:
        return "slicer-core is not installed (pip install 'renderfm[slicer]')"
    return None


def _path_tracer_problem() -> str | None:
    if importlib.util.find_spec("mitsuba") is None:
        return "Mitsuba is not installed (pip install 'renderfm[pathtraced]')"
    import torch

    from .mitsuba_loader import llvm_problem

    return None if torch.cuda.is_available() else llvm_problem()


def default_variant() -> str:
    """The Mitsuba variant the path tracer uses here: cuda_ad_rgb with a CUDA GPU, else
    llvm_ad_rgb (their images differ, so ground truth names the one it used)."""
    import torch

    return "cuda_ad_rgb" if torch.cuda.is_available() else "llvm_ad_rgb"


def render_groundtruth(
    name: str, ct: Volume, preset: Preset, cameras: Sequence[Camera], size: int, *,
    spp: int = 64, threads: int | None = None, variant: str | None = None,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    progress: Progress = lambda fraction, message: None,
) -> list[GroundTruthImage]:
    """Render `ct` with reference `name` from each camera at size x size pixels.

    spp, threads, variant: samples per pixel, CPU threads (None: one per core) and Mitsuba variant
    (None: default_variant()) of the path tracer, whose images are identical only for the same
    seed, spp, thread count and variant. RenderFMError if the renderer cannot run here.
    """
    problem = groundtruth_problem(name)
    if problem is not None:
        raise RenderFMError(f"{name}: {problem}")
    if name.startswith("slicer-"):
        from .slicer_native import render_native

        images = render_native(ct, preset, list(cameras), size, method=name.split("-")[1],
                               background=background)
        progress(1.0, name)
        return [GroundTruthImage(np.asarray(image, dtype=np.float32) / 255.0, None)
                for image in images]
    out = []
    for number, camera in enumerate(cameras):
        out.append(_render_one(name, ct, preset, camera, size, (spp, threads, variant),
                               background))
        progress((number + 1) / len(cameras), f"{name} view {number + 1}/{len(cameras)}")
    return out


def _render_one(name: str, ct: Volume, preset: Preset, camera: Camera, size: int,
                tracing: tuple[int, int | None, str | None],
                background: tuple[float, float, float]) -> GroundTruthImage:
    if name == "dvr":
        from .dvr import render_dvr

        frame = render_dvr(ct, preset, camera, size, background=background)
        return GroundTruthImage(frame.rgb.numpy(), frame.alpha.numpy())
    from .pathtraced import render_pathtraced

    spp, threads, variant = tracing
    image = render_pathtraced(ct, preset, camera, size, spp=spp, threads=threads, variant=variant,
                              background=background)
    return GroundTruthImage(image.rgb, image.alpha)
