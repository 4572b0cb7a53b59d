"""Experiment (python docs/network/experiments/l2_loss/train.py MANIFEST VARIANT RUN_DIR, from the
repository root): the shipped training config (docs/network/train_config.json) with a squared
error term in the image loss, which PSNR (a mean squared error) rewards and L1 does not.

Where a block's look is uncertain, L1 pulls the prediction to the median of what the targets
show and squared error to their mean; the mean is what scores best in PSNR. Variants:
- "mse": optimize/loss.py's loss with its L1 term replaced by MSE_WEIGHT x mean squared error
  (the same gradient as 0.8 L1 at an error of 0.05);
- "l1_mse": optimize/loss.py's loss plus MSE_WEIGHT x mean squared error.
The trainer's held-out scores (metrics.csv) are PSNR and SSIM as always.
"""
import sys

from RenderFMLib.evaluation.metrics import ssim_values
from RenderFMLib.optimize import loss as loss_module
from RenderFMLib.training import trainer
from RenderFMLib.training.config import read_config

MSE_WEIGHT = 8.0


def squared_error_loss(variant: str):
    """The image loss of `variant` (same arguments as optimize/loss.py's image_loss)."""
    def image_loss(rgb, alpha, target_rgb, target_alpha):
        squared = ((rgb - target_rgb) ** 2).mean()
        l1 = (rgb - target_rgb).abs().mean() if variant == "l1_mse" else squared.new_zeros(())
        structure = 1.0 - ssim_values(rgb, target_rgb).mean()
        coverage = (alpha - target_alpha).abs().mean()
        return (loss_module.L1_WEIGHT * l1 + MSE_WEIGHT * squared
                + loss_module.SSIM_WEIGHT * structure + loss_module.ALPHA_WEIGHT * coverage)
    return image_loss


manifest, variant, run = sys.argv[1:4]
if variant not in ("mse", "l1_mse"):
    sys.exit("variant must be mse or l1_mse")
trainer.image_loss = squared_error_loss(variant)
config = read_config("docs/network/train_config.json")
result = trainer.train(manifest, config, run, progress=lambda f, m: None,
                       about={"command": " ".join(["docs/network/experiments/l2_loss/train.py",
                                                   *sys.argv[1:]])})
print(result)
