"""Step-count fine-tune of the sample at 1.5 mm from AGP (PRESET, SEED, STEPS), held-out per view."""
import os, sys, time
sys.path.insert(0, "/work/exp")
import torch
from RenderFMLib.api import finetune, prepare
from RenderFMLib.volume import read_ct
ct = read_ct("/work/main/Resources/sample/ct.nii.gz")
g = prepare(ct, "/work/main/Resources/sample/segmentation.nii.gz",
            os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced"), weights=None, spacing_mm=1.5)
t = time.time()
r = finetune(g, ct, iterations=int(os.environ["STEPS"]), budget_s=None, spacing_mm=1.5,
             seed=int(os.environ.get("SEED", "0")))
print(f"{r.steps} steps {time.time()-t:.0f} s: {r.before.line()} -> {r.after.line()}")
print("per view after", " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in r.after.per_view), flush=True)
