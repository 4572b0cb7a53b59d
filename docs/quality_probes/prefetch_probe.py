"""Does drawing the next dvr window on a worker thread, while the current step runs, buy steps?

    python docs/quality_probes/prefetch_probe.py PRESET SPACING_MM BUDGET_S plain|prefetch
    python docs/quality_probes/prefetch_probe.py PRESET SPACING_MM parts

plain / prefetch: fine-tuning of the sample (AGP) for BUDGET_S seconds, one held-out view at 64
px; prints the steps. parts: medians of 20 of a step's Gaussians' part and of a new dvr window, at
2 and at 1 thread, then of both at once (the window on a worker thread).
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Testing" / "bench"))
from bench_finetune_step import SAMPLE, SIZE, median_s  # noqa: E402

from RenderFMLib.api import load_ct_as_read, prepare  # noqa: E402
from RenderFMLib.groundtruth.dvr import DvrScene, render_dvr  # noqa: E402
from RenderFMLib.optimize import finetune as loop  # noqa: E402
from RenderFMLib.optimize import sampling  # noqa: E402
from RenderFMLib.optimize.views import View, heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402


class Prefetched:
    """`views`' windows, each drawn on a worker thread while the one before it is in use (the
    same windows in the same order: FreshViews' draws never depend on the step)."""

    def __init__(self, views):
        self.views = views
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.next = self.worker.submit(views.sample)

    def largest_window(self):
        return self.views.largest_window()

    def sample(self):
        window = self.next.result()
        self.next = self.worker.submit(self.views.sample)
        return window


def parts(ct, look, gaussians):
    side = sampling.window_side(len(gaussians))
    views = []
    for camera in heldout_cameras(gaussians)[:4]:
        frame = render_dvr(ct, look, camera, SIZE)
        views.append(View(camera, frame.rgb.float(), frame.alpha.float()))
    state = loop._State(gaussians, sampling.CachedViews(views, side), loop.FinetuneOptions())
    fresh = sampling.FreshViews(gaussians, DvrScene(ct, look), SIZE, side)
    fresh.fresh_share = 1.0
    print(f"{len(gaussians)} Gaussians, {side} px windows")
    for threads in (2, 1):
        torch.set_num_threads(threads)
        step = median_s(lambda: state.take_step(0.5), 20)
        window = median_s(fresh.sample, 20)
        print(f"{threads} threads: step {step * 1000:.0f} ms, new window {window * 1000:.0f} ms")
    torch.set_num_threads(2)

    def both():
        worker = threading.Thread(target=fresh.sample)
        worker.start()
        state.take_step(0.5)
        worker.join()
    print(f"both at once, 2 threads: {median_s(both, 20) * 1000:.0f} ms")


def run(ct, gaussians, budget_s, mode):
    train, heldout = sampling.views_for(gaussians, ct, "dvr", size=SIZE, crop=None,
                                        heldout_size=64)
    if mode == "prefetch":
        train = Prefetched(train)
    options = loop.FinetuneOptions(budget_s=budget_s, iterations=1_000_000)
    result = loop.finetune(gaussians, train, heldout[:1], options)
    print(f"{mode}: {result.steps} steps in {result.seconds:.1f} s, "
          f"{1000 * result.seconds / result.steps:.1f} ms a step")
    if mode == "prefetch":
        train.worker.shutdown(wait=True)


preset, spacing = sys.argv[1], float(sys.argv[2])
ct = load_ct_as_read(SAMPLE, None, "cpu")
look = load_preset(preset)
gaussians = prepare(ct, None, look, weights=None, spacing_mm=spacing)
if sys.argv[3] == "parts":
    parts(ct, look, gaussians)
else:
    run(ct, gaussians, float(sys.argv[3]), sys.argv[4])
