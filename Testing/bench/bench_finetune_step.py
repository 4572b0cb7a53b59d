"""What one fine-tuning step costs on this machine, on the bundled sample, in its two parts.

    python Testing/bench/bench_finetune_step.py [--presets P ...] [--spacings native,1.5]
        [--steps 20] [--workers openmp own]

Per preset and spacing (prepare(..., weights=None, spacing_mm=...): AGP), medians over --steps
after 3 warm-up ones of
- the Gaussians' part: render a window with gradients, the loss, the backward pass and the Adam
  step (optimize/finetune.py's step on windows cut from 4 fixed dvr views at 512 px, so that no
  target is rendered inside it);
- a new view's target: a dvr window of a new random view of up to 512 px (sampling.FreshViews with
  every sample new; fine-tuning draws one every third step, every step for windows of
  sampling.FRESH_EVERY_STEP_SIDE px or more).
Windows are fine-tuning's default for the Gaussian count (sampling.window_side: 128 px up to
40,000 Gaussians, 394 px for the sample's 379,168 at 1.5 mm), or --crop px.
--workers: the CPU kernels' threads, torch's OpenMP pool (the library built with -fopenmp, as
fine-tuning runs) and/or threads of their own (-pthread, render/cpu/parallel.h), measured in the
same run, one after the other.
Prints the machine and a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from RenderFMLib.api import load_ct_as_read, prepare
from RenderFMLib.evaluation.metrics import SSIM_WINDOW
from RenderFMLib.groundtruth.dvr import DvrScene, render_dvr
from RenderFMLib.optimize import finetune, sampling
from RenderFMLib.optimize.views import View, heldout_cameras
from RenderFMLib.render.cpu import loader
from RenderFMLib.transfer import load_preset

SAMPLE = Path(__file__).resolve().parents[2] / "Resources" / "sample" / "ct.nii.gz"
SIZE = 512  # px, api.finetune's default view size
WORKERS = {"openmp": ("-fopenmp",), "own": ("-pthread",)}  # loader.THREADING's choices


def use_workers(name: str) -> None:
    """Load the CPU kernels built for `name`'s workers (WORKERS) from now on."""
    loader.THREADING = (WORKERS[name],)
    loader._loaded.clear()
    if loader.available() is not None:
        raise SystemExit(f"the CPU kernels with {name} workers: {loader.available()}")


def median_s(action, steps: int) -> float:
    for _ in range(3):
        action()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(ct, preset: str, spacing: float | None, steps: int, crop: int | None
            ) -> tuple[int, int, float, float]:
    """(Gaussians, window side px, seconds of the Gaussians' part, seconds of a new dvr
    window)."""
    look = load_preset(preset)
    gaussians = prepare(ct, None, look, weights=None, spacing_mm=spacing)
    side = sampling.window_side(len(gaussians)) if crop is None else crop
    views = []
    for camera in heldout_cameras(gaussians)[:4]:
        frame = render_dvr(ct, look, camera, SIZE)
        views.append(View(camera, frame.rgb.float(), frame.alpha.float()))
    state = finetune._State(gaussians, sampling.CachedViews(views, side),
                            finetune.FinetuneOptions())
    step = median_s(lambda: state.take_step(0.5), steps)
    fresh = sampling.FreshViews(gaussians, DvrScene(ct, look), SIZE, side)
    fresh.fresh_share = 1.0  # every sample a new view: the cost of one
    return len(gaussians), side, step, median_s(fresh.sample, steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["CT-Bone", "CT-AAA"])
    parser.add_argument("--spacings", default="native,1.5")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crop", type=int, default=None,
                        help="window side in px (default: fine-tuning's, window_side)")
    parser.add_argument("--workers", nargs="+", choices=sorted(WORKERS), default=["openmp"],
                        help="the CPU kernels' threads (openmp: torch's pool; own: their own)")
    args = parser.parse_args()
    if args.steps < 1 or (args.crop is not None and not SSIM_WINDOW <= args.crop <= SIZE):
        parser.error(f"--steps must be positive and --crop between {SSIM_WINDOW} (the loss's SSIM "
                     f"window) and {SIZE} px")
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load {os.getloadavg()[0]:.2f}; "
          f"medians over {args.steps} steps\n")
    ct = load_ct_as_read(SAMPLE, None, "cpu")
    print("| Preset | Grid | Gaussians | Window (px) | Workers | Gaussians' part (ms) "
          "| New dvr window (ms) |")
    print("|---|---|---:|---:|---|---:|---:|")
    for preset in args.presets:
        for spacing in args.spacings.split(","):
            mm = None if spacing == "native" else float(spacing)
            for workers in args.workers:
                use_workers(workers)
                count, side, step, window = measure(ct, preset, mm, args.steps, args.crop)
                grid = "3 mm" if mm is None else f"{mm:g} mm"
                print(f"| {preset} | {grid} | {count:,} | {side} | {workers} | "
                      f"{step * 1000:.0f} | {window * 1000:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
