"""300 s fine-tune of the sample from AGP, CT-Chest-Contrast-Enhanced (or PRESET), and the
held-out scores per view. Environment: SP (grid, mm; 1.5), SPEC (the preset's specular, for
target and Gaussians), DENSIFY, SEED, BUDGET (s), SAVE (a .safetensors path)."""

import os
import time

from RenderFMLib.api import finetune, prepare
from RenderFMLib.volume import read_ct

CT = "Resources/sample/ct.nii.gz"
SEG = "Resources/sample/segmentation.nii.gz"
spacing = float(os.environ.get("SP", "1.5"))
ct = read_ct(CT)
g = prepare(ct, SEG, os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced"), weights=None,
            spacing_mm=spacing)
if "SPEC" in os.environ:
    g.preset = dict(g.preset, specular=float(os.environ["SPEC"]))
print(len(g), g.preset["specular"], g.preset["specular_power"], flush=True)
started = time.time()
r = finetune(g, ct, budget_s=float(os.environ.get("BUDGET", "300")), spacing_mm=spacing,
             seed=int(os.environ.get("SEED", "0")), densify=bool(os.environ.get("DENSIFY")))
print(f"{r.steps} steps {time.time() - started:.0f} s: {r.before.line()} -> {r.after.line()}")
print("per view before", " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in r.before.per_view))
print("per view after", " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in r.after.per_view), flush=True)
if os.environ.get("SAVE"):
    r.gaussians.save(os.environ["SAVE"])
