"""300 s of fine-tuning from AGP (the sample at 1.5 mm, PRESET, default
CT-Chest-Contrast-Enhanced; seed SEED) with learning rates scaled: SCALE=name:factor,... (names of
optimize/finetune.py's LR, or means for LR_MEANS), and the share of steps that draw a new view
FRESH (sampling.FRESH_SHARE, 1/3). Prints held-out scores per view."""

import os

from RenderFMLib import api
from RenderFMLib.optimize import finetune, sampling
from RenderFMLib.volume import read_ct

preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
seed = int(os.environ.get("SEED", "0"))
for item in filter(None, os.environ.get("SCALE", "").split(",")):
    name, factor = item.split(":")
    if name == "means":
        finetune.LR_MEANS *= float(factor)
    else:
        finetune.LR[name] *= float(factor)
sampling.FRESH_SHARE = float(os.environ.get("FRESH", sampling.FRESH_SHARE))
print(preset, seed, finetune.LR, finetune.LR_MEANS, sampling.FRESH_SHARE, flush=True)
ct = read_ct("Resources/sample/ct.nii.gz")
g = api.prepare(ct, "Resources/sample/segmentation.nii.gz", preset, weights=None, spacing_mm=1.5)
r = api.finetune(g, ct, budget_s=float(os.environ.get("BUDGET", "300")), seed=seed, spacing_mm=1.5)
print(f"{r.steps} steps {r.seconds:.0f} s: {r.before.line()} -> {r.after.line()}")
for name, scores in (("before", r.before), ("after", r.after)):
    print("per view", name, " ".join(f"{p:.2f}/{f:.3f}" for p, _, f in scores.per_view))
