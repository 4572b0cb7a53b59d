"""Paired probe: one 300 s fine-tune from AGP, scoring on the same held-out views (against `dvr`
at 512 px) both its final Gaussians and averages of them over the run: exponential moving
averages (DECAYS, per step) and uniform averages of the last part of the run (TAILS: from that
fraction of the run on, every EVERY steps). The run's steps pay for the averaging (about 1.5 ms
a step per average on the sample at 1.5 mm), final and averages alike.

    DECAYS=0.99,0.997 TAILS=0.7,0.85 EVERY=1 SEED=3 python docs/quality_probes/averages.py
    CT=../shared/data/more_ct/popi00_thorax/ct.nii.gz PRESET=CT-Bone SPACING=0 \
        DECAYS= TAILS=0.5,0.7 EVERY=2 SEED=1 python docs/quality_probes/averages.py

CT (default the bundled sample), SEG (segmentation, default none for other CTs), PRESET (default
CT-Chest-Contrast-Enhanced), SPACING (mm, 0: the CT's own grid; default 1.5), SEED.
"""

import os

import torch

from RenderFMLib import api
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.optimize import finetune as ft
from RenderFMLib.volume import read_ct


def numbers(name: str, default: str) -> list[float]:
    return [float(x) for x in os.environ.get(name, default).split(",") if x]


preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
seed = int(os.environ.get("SEED", "0"))
spacing = float(os.environ.get("SPACING", "1.5")) or None
path = os.environ.get("CT", "Resources/sample/ct.nii.gz")
segmentation = os.environ.get("SEG", "Resources/sample/segmentation.nii.gz"
                              if path == "Resources/sample/ct.nii.gz" else "") or None
DECAYS, TAILS = numbers("DECAYS", "0.99,0.997"), numbers("TAILS", "0.7,0.85")
EVERY = int(os.environ.get("EVERY", "1"))
run: dict = {}
original_init, original_step, original_scores = (ft._State.__init__, ft._State.take_step,
                                                  ft.heldout_scores)


def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    run["state"] = self
    self.averages = {f"ema{d}": None for d in DECAYS} | {f"tail{t}": None for t in TAILS}
    self.counts = {f"tail{t}": 0 for t in TAILS}


def step(self, fraction):
    original_step(self, fraction)
    with torch.no_grad():
        current = {name: value.detach() for name, value in self.params.items()}
        for d in DECAYS:
            key = f"ema{d}"
            if self.averages[key] is None:
                self.averages[key] = {n: v.clone() for n, v in current.items()}
            else:
                for n, v in current.items():
                    self.averages[key][n].lerp_(v, 1 - d)
        for t in TAILS:
            key = f"tail{t}"
            if fraction >= t and self.step % EVERY == 0:
                self.counts[key] += 1
                if self.averages[key] is None:
                    self.averages[key] = {n: v.clone() for n, v in current.items()}
                else:
                    for n, v in current.items():
                        self.averages[key][n].lerp_(v, 1.0 / self.counts[key])


def scores(gaussians, views):
    run["calls"] = run.get("calls", 0) + 1
    result = original_scores(gaussians, views)
    if run["calls"] == 2:  # the tuned Gaussians: score the averages on the same views
        state = run["state"]
        for key, params in state.averages.items():
            if params is None:
                continue
            p = {n: v.clone() for n, v in params.items()}
            p["dir_means"] = torch.nn.functional.normalize(p["dir_means"], dim=-1)
            source = state.source
            averaged = SixDGaussians(p, state.labels.clone(), source.ijk_to_ras,
                                     source.volume_shape, source.preset)
            s = original_scores(averaged, views)
            print("variant", key, s.line(), "| per view",
                  " ".join(f"{a:.2f}/{c:.3f}" for a, _, c in s.per_view), flush=True)
    return result


ft._State.__init__, ft._State.take_step, ft.heldout_scores = init, step, scores
print(preset, seed, spacing, flush=True)
ct = read_ct(path)
g = api.prepare(ct, segmentation, preset, weights=None, spacing_mm=spacing)
r = api.finetune(g, ct, budget_s=300.0, seed=seed, spacing_mm=spacing)
print(f"{r.steps} steps {r.seconds:.0f} s: {r.before.line()} -> {r.after.line()}")
for name, s in (("before", r.before), ("final", r.after)):
    print("per view", name, " ".join(f"{p:.2f}/{f:.3f}" for p, _, f in s.per_view))
