"""Scores of Gaussians on held-out views: the loss fine-tuning minimises, PSNR, SSIM over the
whole image and over the foreground (the pixels that either image covers, alpha > FOREGROUND_ALPHA:
a black background inflates whole-image SSIM), as medians over the views."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ..evaluation.metrics import psnr, ssim
from ..gaussians import SixDGaussians
from .loss import image_loss
from .views import View
from .windows import render_window

FOREGROUND_ALPHA = 0.05


@dataclass(frozen=True)
class Scores:
    """Medians over held-out views (loss: the mean); per_view: each view's (psnr, ssim, ssim_fg)."""

    loss: float
    psnr: float
    ssim: float
    ssim_fg: float
    per_view: tuple[tuple[float, float, float], ...]

    def line(self) -> str:
        return (f"PSNR {self.psnr:.2f} dB, SSIM {self.ssim:.3f}, foreground SSIM "
                f"{self.ssim_fg:.3f}")


def foreground(*alphas: torch.Tensor) -> torch.Tensor:
    """[H, W] bool: pixels that any of the alphas covers."""
    return torch.stack([alpha > FOREGROUND_ALPHA for alpha in alphas]).any(0)


def view_scores(rgb: torch.Tensor, alpha: torch.Tensor, view: View) -> tuple[float, float, float]:
    """(PSNR, SSIM, foreground SSIM) of a full render against the view's target."""
    rgb, target = rgb.detach().clamp(0, 1).cpu(), view.rgb.cpu()  # scored on the CPU
    mask = foreground(alpha.detach().cpu(), view.alpha.cpu())
    try:
        masked = ssim(rgb, target, mask)
    except ValueError:  # nothing in the foreground, away from the border
        masked = float("nan")
    return psnr(rgb, target), ssim(rgb, target), masked


def heldout_scores(gaussians: SixDGaussians, views: list[View]) -> Scores:
    """Scores of `gaussians` rendered at each view's size against its target."""
    if not views:
        nan = float("nan")
        return Scores(nan, nan, nan, nan, ())
    params = {name: value.detach() for name, value in gaussians.params().items()}
    losses, per_view = [], []
    with torch.no_grad():
        for view in views:
            rgb, alpha = render_window(params, view.camera, view.size, (0, 0, view.size))
            losses.append(float(image_loss(rgb, alpha, view.rgb, view.alpha)))
            per_view.append(view_scores(rgb, alpha, view))
    medians = (statistics.median(column) for column in zip(*per_view))
    median_psnr, median_ssim, median_ssim_fg = medians
    return Scores(sum(losses) / len(losses), median_psnr, median_ssim, median_ssim_fg,
                  tuple(per_view))
