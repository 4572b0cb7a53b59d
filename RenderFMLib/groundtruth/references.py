"""The reference renderers behind one call, for `renderfm compare` and `renderfm make-gt`.

    dvr          emission-absorption ray marching, Slicer's CPU ray cast model (dvr.py)
    pathtraced   Mitsuba 3 volumetric path tracing, the photorealistic target (pathtraced.py)
    slicer-cpu   Slicer's own CPU ray cast, headless (slicer_native.py; needs renderfm[slicer])
    slicer-gpu   Slicer's own GPU ray cast: opacity per voxel, not per mm (DESIGN.md section 3)

Each renders a CT (HU, RAS mm) with a preset from a list of cameras and gives display RGB in
[0, 1]; the optional ones say why they cannot run (reference_problem) instead of failing late.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..camera import Camera
from ..errors import RenderFMError
from ..transfer import Preset
from ..volume import Volume

REFERENCES = {
    "dvr": "ray marching (Slicer's CPU ray cast model)",
    "pathtraced": "Mitsuba volumetric path tracing",
    "slicer-cpu": "Slicer CPU ray cast (opacity per mm)",
    "slicer-gpu": "Slicer GPU ray cast (opacity per voxel, Slicer issue #3716)",
}

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ReferenceImage:
    """rgb [H, W, 3] float32 display RGB in [0, 1], background included; alpha [H, W] coverage
    in [0, 1], or None where the renderer does not give it (Slicer's views)."""

    rgb: np.ndarray
    alpha: np.ndarray | None


def reference_problem(name: str) -> str | None:
    """None when reference `name` can run here, else the reason (a missing package)."""
    if name not in REFERENCES:
        raise RenderFMError(f"unknown reference renderer '{name}'; choose from "
                            f"{', '.join(REFERENCES)}")
    if name == "pathtraced" and importlib.util.find_spec("mitsuba") is None:
        return "Mitsuba is not installed (pip install 'renderfm[pathtraced]')"
    if name.startswith("slicer-") and importlib.util.find_spec("slicer") is None:
        return "slicer-core is not installed (pip install 'renderfm[slicer]')"
    return None


def render_reference(
    name: str, ct: Volume, preset: Preset, cameras: Sequence[Camera], size: int, *,
    spp: int = 64, threads: int | None = None,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    progress: Progress = lambda fraction, message: None,
) -> list[ReferenceImage]:
    """Render `ct` with reference `name` from each camera at size x size pixels.

    spp, threads: samples per pixel and CPU threads of the path tracer (its images are identical
    only for the same seed, spp and thread count; None: one per core). RenderFMError if the
    renderer cannot run here.
    """
    problem = reference_problem(name)
    if problem is not None:
        raise RenderFMError(f"{name}: {problem}")
    if name.startswith("slicer-"):
        from .slicer_native import render_native

        images = render_native(ct, preset, list(cameras), size, method=name.split("-")[1],
                               background=background)
        progress(1.0, name)
        return [ReferenceImage(np.asarray(image, dtype=np.float32) / 255.0, None)
                for image in images]
    out = []
    for number, camera in enumerate(cameras):
        out.append(_render_one(name, ct, preset, camera, size, spp, threads, background))
        progress((number + 1) / len(cameras), f"{name} view {number + 1}/{len(cameras)}")
    return out


def _render_one(name: str, ct: Volume, preset: Preset, camera: Camera, size: int, spp: int,
                threads: int | None, background: tuple[float, float, float]) -> ReferenceImage:
    if name == "dvr":
        from .dvr import render_dvr

        frame = render_dvr(ct, preset, camera, size, background=background)
        return ReferenceImage(frame.rgb.numpy(), frame.alpha.numpy())
    from .pathtraced import render_pathtraced

    image = render_pathtraced(ct, preset, camera, size, spp=spp, threads=threads,
                              background=background)
    return ReferenceImage(image.rgb, image.alpha)
