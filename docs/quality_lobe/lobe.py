"""Fine-tune the sample's 1.5 mm AGP Gaussians for 300 s and print held-out scores per view.

Run in a scratch copy of the tree with scratch.patch applied (the white term read as a lobe):
    INIT=resting SEED=0 python lobe.py   # lobes along mu_d with strength 0: AGP as it is
    RFM_LOBE=1 INIT=agp SEED=0 python lobe.py   # lobes fitted by the patched priming
PRESET (CT-Chest-Contrast-Enhanced), BUDGET (300 s), OUT (a model file to write) optional.
"""

import os

import torch

from RenderFMLib import api
from RenderFMLib.volume import read_ct

preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
init = os.environ.get("INIT", "agp")
seed = int(os.environ.get("SEED", "0"))
ct = read_ct("Resources/sample/ct.nii.gz")
g = api.prepare(ct, "Resources/sample/segmentation.nii.gz", preset, weights=None, spacing_mm=1.5)
print(len(g), preset, init, seed, flush=True)
if init == "resting":  # the lobe's axis along mu_d, strength 0: no white light yet
    params = g.params()
    lobe = torch.zeros_like(params["specular_sh"])
    lobe[:, 0:3] = torch.nn.functional.normalize(params["dir_means"], dim=-1)
    params["specular_sh"] = lobe
    g = type(g)(params, g.labels, g.ijk_to_ras, g.volume_shape, g.preset)
r = api.finetune(g, ct, budget_s=float(os.environ.get("BUDGET", "300")), seed=seed,
                 spacing_mm=1.5)
print(f"{r.steps} steps {r.seconds:.0f} s: {r.before.line()} -> {r.after.line()}")
for name, scores in (("before", r.before), ("after", r.after)):
    print("per view", name, " ".join(f"{p:.2f}/{f:.3f}" for p, _, f in scores.per_view))
if os.environ.get("OUT"):
    r.gaussians.save(os.environ["OUT"])
