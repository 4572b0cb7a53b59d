"""Does the preset's white specular limit the sample's hard CCE close-up? Fine-tune AGP (1.5 mm)
with the preset's specular set to SPEC (env), 300 s, and print held-out per-view scores."""
import os, sys, time
import torch
from RenderFMLib.api import finetune, prepare
from RenderFMLib.volume import read_ct
CT = "/work/main/Resources/sample/ct.nii.gz"; SEG = "/work/main/Resources/sample/segmentation.nii.gz"
ct = read_ct(CT)
preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
g = prepare(ct, SEG, preset, weights=None, spacing_mm=float(os.environ.get("SP", "1.5")))
if "SPEC" in os.environ:
    g.preset = dict(g.preset, specular=float(os.environ["SPEC"]))
print(len(g), g.preset["specular"], g.preset["specular_power"], flush=True)
t = time.time()
r = finetune(g, ct, budget_s=float(os.environ.get("BUDGET", "300")), spacing_mm=float(os.environ.get("SP", "1.5")),
             seed=int(os.environ.get("SEED", "0")), densify=bool(os.environ.get("DENSIFY")))
print(f"{r.steps} steps {time.time()-t:.0f} s: {r.before.line()} -> {r.after.line()}")
print("per view before", " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in r.before.per_view))
print("per view after", " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in r.after.per_view), flush=True)
if os.environ.get("SAVE"):
    r.gaussians.save(os.environ["SAVE"])
