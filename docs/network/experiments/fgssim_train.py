"""Experiment (python docs/network/experiments/fgssim_train.py RUN_DIR, from the repository root):
the 48-voxel-crop run (docs/network/experiments/crop48_config.json, the config the network
shipped with until crops of 72 voxels replaced it) with SSIM taken over the foreground (the
pixels either image covers) instead of over the whole crop."""
import sys

import torch

from RenderFMLib.evaluation.metrics import SSIM_WINDOW, ssim_values
from RenderFMLib.optimize import loss as loss_module
from RenderFMLib.optimize.evaluate import foreground
from RenderFMLib.training import trainer
from RenderFMLib.training.config import read_config


def fg_image_loss(rgb, alpha, target_rgb, target_alpha):
    """optimize/loss.py's image loss, its SSIM averaged over the foreground pixels only."""
    l1 = (rgb - target_rgb).abs().mean()
    values = ssim_values(rgb, target_rgb)
    b = SSIM_WINDOW // 2
    inner = foreground(alpha.detach(), target_alpha)[b:-b, b:-b]
    structure = 1.0 - values[inner].mean() if bool(inner.any()) else values.new_zeros(())
    coverage = (alpha - target_alpha).abs().mean()
    return (loss_module.L1_WEIGHT * l1 + loss_module.SSIM_WEIGHT * structure
            + loss_module.ALPHA_WEIGHT * coverage)


trainer.image_loss = fg_image_loss
torch.set_num_threads(2)
config = read_config("docs/network/experiments/crop48_config.json")
result = trainer.train("docs/network/manifest.json", config, sys.argv[1],
                       progress=lambda f, m: None,
                       about={"command": "docs/network/experiments/fgssim_train.py " + sys.argv[1]})
print(result)
