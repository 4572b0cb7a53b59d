"""300 s of fine-tuning from AGP: the sample at 1.5 mm, PRESET (default
CT-Chest-Contrast-Enhanced), seed SEED, with sampling.CLOSE_UP_SHARE set to CLOSE (the share of new
views that are close-ups, 0.25 by default). Prints the held-out scores per view: PSNR / foreground
SSIM against dvr at 512 px, 4 orbit views then the 2 close-ups.

    CLOSE=0.4 SEED=1 python docs/quality_omp/closeups.py
"""

import os

from RenderFMLib import api
from RenderFMLib.optimize import sampling
from RenderFMLib.volume import read_ct

preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
seed = int(os.environ.get("SEED", "0"))
sampling.CLOSE_UP_SHARE = float(os.environ.get("CLOSE", sampling.CLOSE_UP_SHARE))
print(preset, seed, sampling.CLOSE_UP_SHARE, flush=True)
ct = read_ct("Resources/sample/ct.nii.gz")
g = api.prepare(ct, "Resources/sample/segmentation.nii.gz", preset, weights=None, spacing_mm=1.5)
r = api.finetune(g, ct, budget_s=300.0, seed=seed, spacing_mm=1.5)
print(f"{r.steps} steps {r.seconds:.0f} s: {r.before.line()} -> {r.after.line()}")
for name, scores in (("before", r.before), ("after", r.after)):
    print("per view", name, " ".join(f"{p:.2f}/{f:.3f}" for p, _, f in scores.per_view))
