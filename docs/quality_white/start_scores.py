"""Held-out scores of the starting Gaussians (AGP and the shipped network) of the sample on an SP
mm grid (1.5), for each of PRESETS, against dvr at 512 px (the views fine-tuning holds out). Run
from the repository root."""
import os

from RenderFMLib.api import prepare
from RenderFMLib.optimize import sampling
from RenderFMLib.optimize.evaluate import heldout_scores
from RenderFMLib.volume import read_ct

ct = read_ct("Resources/sample/ct.nii.gz")
sp = float(os.environ.get("SP", "1.5"))
for preset in os.environ.get("PRESETS", "CT-Chest-Contrast-Enhanced CT-Bone").split():
    for weights in (None, "default"):
        kw = {} if weights == "default" else {"weights": None}
        g = prepare(ct, "Resources/sample/segmentation.nii.gz", preset, spacing_mm=sp, **kw)
        _, held = sampling.views_for(g, ct, "dvr", size=512, crop=None, heldout_size=512, seed=0)
        s = heldout_scores(g, held)
        views = " ".join(f"{v[0]:.2f}/{v[2]:.3f}" for v in s.per_view)
        print(preset, weights or "agp", len(g), s.line(), views, flush=True)
