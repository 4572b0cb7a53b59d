"""Time per image of every renderer on the bundled sample CT: RenderFM (AGP), dvr, Slicer's CPU and
GPU ray cast (headless slicer-core on this machine's OpenGL) and the Mitsuba path tracer.

    python Testing/bench/bench_groundtruth.py [--sizes 256 512] [--preset CT-Bone] [--runs 3]
                                              [--spp 4] [--renderers ...]

Each renderer draws --runs orbit views (azimuths 0, 40, 80...) at each size after one warm-up
image; the table gives the median wall time per image. The headless Slicer renderers keep one
scene and 3D view for all images (set-up time printed apart), as a Slicer session would. The path
tracer's time grows linearly with --spp (samples per pixel); its column says how many it used.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from RenderFMLib.api import prepare, render
from RenderFMLib.camera import Camera, orbit_camera
from RenderFMLib.groundtruth.dvr import render_dvr
from RenderFMLib.groundtruth.pathtraced import render_pathtraced
from RenderFMLib.resources import resource_path
from RenderFMLib.volume import read_ct

RENDERERS = ["renderfm-agp", "dvr", "slicer-cpu", "slicer-gpu", "pathtraced"]


def _slicer(ct, preset: str, method: str) -> tuple[Callable[[Camera, int], object], Callable]:
    """(render one image, close) over one headless scene; the view is resized per image size."""
    from RenderFMLib.slicer.context import SlicerContext
    from RenderFMLib.slicer.native import show_volume_rendering
    from RenderFMLib.slicer.nodes import volume_node
    from RenderFMLib.slicer.view import OffscreenThreeDView

    started = time.perf_counter()
    context = SlicerContext.headless()
    views: dict[int, OffscreenThreeDView] = {}
    node = volume_node(context, ct, "CT")

    def draw(camera: Camera, size: int):
        if size not in views:
            views[size] = OffscreenThreeDView(context, (size, size))
            show_volume_rendering(context, views[size], node, preset, method)
        views[size].set_camera(camera)
        return views[size].capture()

    def close() -> None:
        for view in views.values():
            view.close()

    print(f"slicer-{method}: scene set-up {time.perf_counter() - started:.2f} s")
    return draw, close


def _renderer(name: str, ct, preset: str, spp: int):
    if name == "renderfm-agp":
        gaussians = prepare(ct, None, preset)
        return (lambda camera, size: render(gaussians, camera, size)), (lambda: None)
    if name == "dvr":
        return (lambda camera, size: render_dvr(ct, preset, camera, size)), (lambda: None)
    if name == "pathtraced":
        return (lambda camera, size: render_pathtraced(ct, preset, camera, size, spp=spp)), \
            (lambda: None)
    return _slicer(ct, preset, name.split("-")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--preset", default="CT-Bone")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spp", type=int, default=4)
    parser.add_argument("--renderers", nargs="+", default=RENDERERS, choices=RENDERERS)
    args = parser.parse_args()
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    ct = read_ct(resource_path("sample", "ct.nii.gz"))
    cameras = [orbit_camera(ct.center_ras(), ct.bounding_radius(), 40.0 * i, 0.0)
               for i in range(args.runs)]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), load average "
          f"{os.getloadavg()[0]:.1f}; preset {args.preset}\n")
    rows = []
    for name in args.renderers:
        draw, close = _renderer(name, ct, args.preset, args.spp)
        times = []
        for size in args.sizes:
            draw(cameras[0], size)  # warm-up: JIT, first-frame set-up
            samples = []
            for camera in cameras:
                started = time.perf_counter()
                draw(camera, size)
                samples.append(time.perf_counter() - started)
            times.append(statistics.median(samples))
        close()
        label = f"{name} ({args.spp} spp)" if name == "pathtraced" else name
        rows.append(f"| {label} | " + " | ".join(f"{t:.3f}" for t in times) + " |")
    print("| renderer | " + " | ".join(f"{s}x{s} (s)" for s in args.sizes) + " |")
    print("|---|" + "---:|" * len(args.sizes))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
