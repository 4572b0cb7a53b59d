"""300 s of fine-tuning from AGP: the bundled sample at 1.5 mm, PRESET (default
CT-Chest-Contrast-Enhanced), seed SEED, windows of CROP px (default: sampling.window_side's, 167
px here). Prints the held-out scores per view: PSNR / foreground SSIM against dvr at 512 px, 4
orbit views then the 2 close-ups; OUT, if set, receives the Gaussians' parameters (safetensors,
for closeup_error.py).

    CROP=128 SEED=3 python docs/quality_probes/windows.py
"""

import os

from safetensors.torch import save_file

from RenderFMLib import api
from RenderFMLib.volume import read_ct

preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
seed = int(os.environ.get("SEED", "0"))
crop = int(os.environ["CROP"]) if "CROP" in os.environ else None
ct = read_ct("Resources/sample/ct.nii.gz")
g = api.prepare(ct, "Resources/sample/segmentation.nii.gz", preset, weights=None, spacing_mm=1.5)
r = api.finetune(g, ct, budget_s=300.0, seed=seed, spacing_mm=1.5, crop=crop)
print(f"{r.steps} steps {r.seconds:.0f} s: {r.before.line()} -> {r.after.line()}")
print("per view", " ".join(f"{p:.2f}/{f:.3f}" for p, _, f in r.after.per_view))
if "OUT" in os.environ:
    tensors = {k: v.contiguous() for k, v in r.gaussians.params().items()}
    save_file({**tensors, "labels": r.gaussians.labels.contiguous()}, os.environ["OUT"])
