"""Fine-tune the sample at 1.5 mm from AGP for STEPS steps (no time budget), PRESET, SEED;
held-out scores per view."""

import os
import time

from RenderFMLib.api import finetune, prepare
from RenderFMLib.volume import read_ct

ct = read_ct("Resources/sample/ct.nii.gz")
g = prepare(ct, "Resources/sample/segmentation.nii.gz",
            os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced"), weights=None, spacing_mm=1.5)
started = time.time()
r = finetune(g, ct, iterations=int(os.environ["STEPS"]), budget_s=None, spacing_mm=1.5,
             seed=int(os.environ.get("SEED", "0")))
print(f"{r.steps} steps {time.time() - started:.0f} s: {r.before.line()} -> {r.after.line()}")
print("per view after", " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in r.after.per_view), flush=True)
