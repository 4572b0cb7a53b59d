"""Adam that moves only the Gaussians a step's window reached (their gradient is not zero) and
keeps the others' moments as they were, bias-corrected by the global step (the "selective" or
"visible" Adam of later 3DGS trainers), against fine-tuning's plain Adam, which keeps moving every
Gaussian along its momentum.

    [SELECTIVE=0] [SEED=0] [BUDGET=40 | STEPS=500] [PRESET=...] [SPACING=1.5] \
        python docs/quality_probes/selective_adam.py

Fine-tunes the sample (AGP at SPACING mm) for BUDGET s or, given STEPS, for that many steps, and
prints the held-out scores per view:
PSNR / foreground SSIM against dvr at 512 px, 4 orbit views then the 2 close-ups.
"""

import os

import torch

from RenderFMLib import api
from RenderFMLib.optimize import finetune as loop
from RenderFMLib.volume import read_ct

B1, B2, EPS = 0.9, 0.999, 1e-15  # torch.optim.Adam's betas; fine-tuning's eps


class SelectiveState(loop._State):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.moments = {name: (torch.zeros_like(value), torch.zeros_like(value))
                        for name, value in self.params.items() if value.requires_grad}
        self.updates = 0

    def take_step(self, fraction):
        self._set_lr(fraction)
        rates = {group["name"]: group["lr"] for group in self.optimizer.param_groups}
        window = self.train.sample()
        rgb, alpha = loop.render_window(self.params, window.camera, window.size, window.box)
        loss = loop.image_loss(rgb, alpha, window.rgb, window.alpha)
        for value in self.params.values():
            value.grad = None
        loss.backward()
        rows = self.params["opacity_logits"].grad.ne(0).nonzero().squeeze(-1)
        self.updates += 1
        first, second = 1 - B1 ** self.updates, 1 - B2 ** self.updates
        with torch.no_grad():
            for name, (m, v) in self.moments.items():
                value = self.params[name]
                grad = value.grad.index_select(0, rows)
                m_rows = m.index_select(0, rows).mul_(B1).add_(grad, alpha=1 - B1)
                v_rows = v.index_select(0, rows).mul_(B2).addcmul_(grad, grad, value=1 - B2)
                m.index_copy_(0, rows, m_rows)
                v.index_copy_(0, rows, v_rows)
                step = (m_rows / first) / (v_rows / second).sqrt_().add_(EPS)
                value.index_copy_(0, rows, value.index_select(0, rows).sub_(
                    step, alpha=rates[name]))
        self._project()
        self.step += 1
        self.losses.append(float(loss.detach()))
        self.last_psnr = loop.psnr(rgb.detach().clamp(0, 1), window.rgb)


preset = os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced")
seed = int(os.environ.get("SEED", "0"))
selective = os.environ.get("SELECTIVE", "1") == "1"
spacing = float(os.environ.get("SPACING", "1.5"))
steps = int(os.environ.get("STEPS", "0"))
budget = None if steps else float(os.environ.get("BUDGET", "40"))
if selective:
    loop._State = SelectiveState
print(preset, seed, "selective" if selective else "plain", spacing, budget or f"{steps} steps",
      flush=True)
ct = read_ct("Resources/sample/ct.nii.gz")
g = api.prepare(ct, "Resources/sample/segmentation.nii.gz", preset, weights=None,
                spacing_mm=spacing)
r = api.finetune(g, ct, iterations=steps or api.ITERATIONS, budget_s=budget, seed=seed,
                 spacing_mm=spacing)
print(f"{r.steps} steps {r.seconds:.0f} s: {r.before.line()} -> {r.after.line()}")
for name, scores in (("before", r.before), ("after", r.after)):
    print("per view", name, " ".join(f"{p:.2f}/{f:.3f}" for p, _, f in scores.per_view))
