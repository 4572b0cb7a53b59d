"""dvr target windows as fine-tuning draws them (12 new views of up to 512 px, each timed twice),
with the bricks of empty cells and without: the same bits, and the time (medians, ms).

    python docs/quality_omp/bricks_probe.py CT PRESET [SPACING_MM]
"""

import dataclasses
import statistics
import sys
import time

import torch

from RenderFMLib.api import prepare
from RenderFMLib.groundtruth.dvr import DvrScene
from RenderFMLib.optimize import sampling
from RenderFMLib.volume import read_ct

path, preset = sys.argv[1], sys.argv[2]
spacing = float(sys.argv[3]) if len(sys.argv) > 3 else None
ct = read_ct(path)
gaussians = prepare(ct, None, preset, weights=None, spacing_mm=spacing)
scene = DvrScene(ct, preset)
fresh = sampling.FreshViews(gaussians, scene, 512, sampling.window_side(len(gaussians)))
fresh.fresh_share = 1.0
windows = [fresh.sample() for _ in range(12)]
geometry = scene.geometry
same = True
for name, bricks in (("bricks", geometry.bricks), ("no bricks", None)):
    scene.geometry = dataclasses.replace(geometry, bricks=bricks)
    times = []
    for _ in range(2):
        for window in windows:
            started = time.perf_counter()
            frame = scene.render(window.camera, window.size, window=window.box)
            times.append(time.perf_counter() - started)
            same &= torch.equal(frame.rgb, window.rgb) and torch.equal(frame.alpha, window.alpha)
    print(f"{name}: median {1000 * statistics.median(times):.1f} ms "
          f"mean {1000 * statistics.mean(times):.1f}", flush=True)
print("same bits", same)
