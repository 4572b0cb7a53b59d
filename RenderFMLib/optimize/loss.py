"""The image loss of fine-tuning: 0.8 L1 + 0.2 (1 - SSIM) on RGB (over a black background, as
the targets are), plus ALPHA_WEIGHT x L1 on coverage (alpha), which keeps see-through holes from
opening where the target is opaque. SSIM is metrics.py's (11 px Gaussian window), differentiable.
"""

from __future__ import annotations

import torch

from ..evaluation.metrics import ssim_values

L1_WEIGHT = 0.8
SSIM_WEIGHT = 0.2
ALPHA_WEIGHT = 0.2


def image_loss(rgb: torch.Tensor, alpha: torch.Tensor, target_rgb: torch.Tensor,
               target_alpha: torch.Tensor) -> torch.Tensor:
    """Scalar loss of a render (rgb [H, W, 3], alpha [H, W]) against its target (same shapes);
    images of at least 11 x 11 pixels."""
    l1 = (rgb - target_rgb).abs().mean()
    structure = 1.0 - ssim_values(rgb, target_rgb).mean()
    coverage = (alpha - target_alpha).abs().mean()
    return L1_WEIGHT * l1 + SSIM_WEIGHT * structure + ALPHA_WEIGHT * coverage
