"""The CPU kernels (render/cpu) against the PyTorch reference on this machine: frame times, and
forward + backward times as fine-tuning takes them, on the bundled sample.

    python Testing/bench/bench_cpu_kernels.py [--presets P ...] [--spacings native,1.5]
        [--sizes 256,512] [--views 4] [--tiles 4,8,16]

Per preset and spacing (prepare(..., weights=None, spacing_mm=...): AGP; 1.5 mm is one
Gaussian per voxel of the 3 mm sample): the median over --views orbit views of
- a frame through api.render with backend "torch" and "cpu", in turn per view, after a warm-up;
- a frame's forward and backward pass (a loss on rgb and alpha) with every parameter requiring
  gradients, for each backend (precompute too: the reference's, or the kernels' precompute and
  precompute_bwd);
- a "cpu" frame at each blend tile size in --tiles (pipeline.TILE_SIZE, the shipped value
  marked), the largest --sizes only.
The ratios torch / cpu come from the same run. Prints the machine and markdown tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from RenderFMLib.api import default_camera, prepare, render
from RenderFMLib.camera import camera_tensors
from RenderFMLib.render.backends import pick
from RenderFMLib.render.cpu import pipeline as cpu_pipeline
from RenderFMLib.render.reference import precompute

SAMPLE = Path(__file__).resolve().parents[2] / "Resources" / "sample" / "ct.nii.gz"


def frame_s(gaussians, camera, size: int, backend: str) -> float:
    started = time.perf_counter()
    with torch.no_grad():
        render(gaussians, camera, size, backend=backend)
    return time.perf_counter() - started


def step_s(gaussians, camera, size: int, backend: str) -> float:
    """Seconds of one differentiable frame and its backward pass, the backend's precompute
    included."""
    params = {k: v.detach().clone().requires_grad_() for k, v in gaussians.params().items()}
    w2c, intrinsics, centre = camera_tensors(camera, size, size, torch.device("cpu"),
                                             torch.float32)
    started = time.perf_counter()
    slicing = cpu_pipeline.precompute if backend == "cpu" else precompute
    s_c, gains, s_dd_inv = slicing(params["log_scales"], params["corr_logits"])
    rgb, alpha, _ = pick(backend, torch.device("cpu"), torch.float32)(
        params["means"], params["dir_means"], s_c, gains, s_dd_inv, params["opacity_logits"],
        params["rgb"], params["sh"], params["specular_sh"], w2c, intrinsics, centre, size, size,
        torch.zeros(3))
    (rgb.square().mean() + alpha.mean()).backward()
    return time.perf_counter() - started


def measure(gaussians, sizes: list[int], views: int, tiles: list[int]) -> dict:
    cameras = [default_camera(gaussians, azimuth=360.0 * v / views, elevation=10.0)
               for v in range(views)]
    out: dict = {}
    for size in sizes:
        for backend in ("torch", "cpu"):
            frame_s(gaussians, cameras[0], size, backend)  # warm-up (and the one build)
        for kind, timer in (("frame", frame_s), ("step", step_s)):
            times: dict[str, list[float]] = {"torch": [], "cpu": []}
            for camera in cameras:
                for backend in times:
                    times[backend].append(timer(gaussians, camera, size, backend))
            out[(kind, size)] = {b: statistics.median(t) for b, t in times.items()}
    shipped = cpu_pipeline.TILE_SIZE
    try:
        for tile in tiles:
            cpu_pipeline.TILE_SIZE = tile
            frame_s(gaussians, cameras[0], sizes[-1], "cpu")
            out[("tile", tile)] = statistics.median(
                frame_s(gaussians, c, sizes[-1], "cpu") for c in cameras)
    finally:
        cpu_pipeline.TILE_SIZE = shipped
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["CT-Bone", "CT-AAA"])
    parser.add_argument("--spacings", default="native,1.5")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--tiles", default="4,8,16")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tiles = [int(t) for t in args.tiles.split(",")]
    spacings = [None if s == "native" else float(s) for s in args.spacings.split(",")]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"CPU: {cpu}, {os.cpu_count()} cores; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load {os.getloadavg()[0]:.2f}; "
          f"medians over {args.views} orbit views\n")
    rows = []
    for preset in args.presets:
        for spacing in spacings:
            gaussians = prepare(SAMPLE, None, preset, weights=None, spacing_mm=spacing)
            label = f"{preset}, {'3 mm' if spacing is None else f'{spacing:g} mm'}"
            rows.append((label, len(gaussians), measure(gaussians, sizes, args.views, tiles)))
    print("| Gaussians | px | Frame torch (ms) | Frame cpu (ms) | Ratio | Forward + backward "
          "torch (ms) | cpu (ms) | Ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, count, result in rows:
        for size in sizes:
            frame, step = result[("frame", size)], result[("step", size)]
            print(f"| {label} ({count:,}) | {size} | {1000 * frame['torch']:.0f} | "
                  f"{1000 * frame['cpu']:.0f} | {frame['torch'] / frame['cpu']:.1f} | "
                  f"{1000 * step['torch']:.0f} | {1000 * step['cpu']:.0f} | "
                  f"{step['torch'] / step['cpu']:.1f} |")
    print(f"\nThe cpu blend's tile size, frame at {sizes[-1]} px (ms; shipped: "
          f"{cpu_pipeline.TILE_SIZE}):\n")
    print("| Gaussians | " + " | ".join(f"tile {t}" for t in tiles) + " |")
    print("|---|" + "---:|" * len(tiles))
    for label, _count, result in rows:
        print(f"| {label} | " + " | ".join(f"{1000 * result[('tile', t)]:.0f}" for t in tiles)
              + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
