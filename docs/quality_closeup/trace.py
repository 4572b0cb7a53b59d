"""Held-out PSNR every EVERY steps of one fine-tune of the sample from AGP, by steps:
python trace.py SPACING STEPS SEED EVERY (PRESET from the environment; WEIGHTS=shipped or a file
starts from that network instead)."""

import os
import sys

from RenderFMLib.api import prepare
from RenderFMLib.optimize import finetune as ft
from RenderFMLib.optimize import sampling
from RenderFMLib.optimize.evaluate import heldout_scores
from RenderFMLib.volume import read_ct

spacing, steps = float(sys.argv[1]), int(sys.argv[2])
seed, every = int(sys.argv[3]), int(sys.argv[4])
ct = read_ct("Resources/sample/ct.nii.gz")
g = prepare(ct, "Resources/sample/segmentation.nii.gz", os.environ.get("PRESET", "CT-Bone"),
            weights=os.environ.get("WEIGHTS"), spacing_mm=spacing)
train, held = sampling.views_for(g, ct, "dvr", size=512, crop=None, heldout_size=512, seed=seed)
state = ft._State(g, train, ft.FinetuneOptions(iterations=steps, seed=seed))


def show() -> None:
    s = heldout_scores(state.gaussians(), held)
    views = " ".join(f"{v[0]:.1f}" for v in s.per_view)
    print(f"step {state.step}: median {s.psnr:.2f} fg {s.ssim_fg:.3f} per view {views}",
          flush=True)


show()
while state.step < steps:
    state.take_step(state.step / steps)
    if state.step % every == 0:
        show()
