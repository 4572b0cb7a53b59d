"""Where the sample's harder held-out close-up keeps its error (CT-Chest-Contrast-Enhanced at 1.5
mm, 512 px, against `dvr`): a saved fine-tuned model (windows.py's OUT) scored on that view, its
error split by foreground, by the target's edges and by scale (both images blurred), and a
picture: dvr | fine-tuned | AGP | |error| x 4.

    SEED=3 OUT=runs/ft_s3.safetensors python docs/quality_probes/windows.py
    MODEL=runs/ft_s3.safetensors python docs/quality_probes/closeup_error.py
"""

import math
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from RenderFMLib import api
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.optimize.views import dvr_target, heldout_cameras
from RenderFMLib.optimize.windows import render_window
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import read_ct

PRESET = "CT-Chest-Contrast-Enhanced"
ct = read_ct("Resources/sample/ct.nii.gz")
agp = api.prepare(ct, "Resources/sample/segmentation.nii.gz", PRESET, weights=None,
                  spacing_mm=1.5)
tensors = load_file(os.environ["MODEL"])
labels = tensors.pop("labels")
tuned = SixDGaussians(tensors, labels, agp.ijk_to_ras, agp.volume_shape, agp.preset)
view = dvr_target(ct, load_preset(PRESET))(heldout_cameras(agp)[4], 512)  # the harder close-up
with torch.no_grad():
    rgb, alpha = render_window(tuned.params(), view.camera, 512, (0, 0, 512))
    start, _ = render_window(agp.params(), view.camera, 512, (0, 0, 512))
ours, target = rgb.clamp(0, 1).numpy(), view.rgb.numpy()
error = (ours - target) ** 2
print(f"PSNR {-10 * math.log10(error.mean()):.2f} dB")
fg = (view.alpha.numpy() > 0.05) | (alpha.numpy() > 0.05)
print(f"foreground {fg.mean():.1%} of the pixels, {error[fg].sum() / error.sum():.1%} of the error")


def blurred(image: np.ndarray, sigma: int) -> np.ndarray:
    x = torch.from_numpy(image).permute(2, 0, 1)[:, None]
    k = torch.exp(-torch.arange(-3 * sigma, 3 * sigma + 1, dtype=torch.float32) ** 2
                  / (2 * sigma * sigma))
    k /= k.sum()
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1), padding=(0, 3 * sigma))
    x = torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1), padding=(3 * sigma, 0))
    return x[:, 0].permute(1, 2, 0).numpy()


for sigma in (1, 2, 4):
    e = ((blurred(ours, sigma) - blurred(target, sigma)) ** 2).mean()
    print(f"both blurred, sigma {sigma} px: PSNR {-10 * math.log10(e):.2f} dB")
gy, gx = np.gradient(target.mean(-1))
edge = np.hypot(gx, gy)
median, top = np.quantile(edge[fg], [0.5, 0.9])
for name, pixels in (("flattest half", fg & (edge <= median)),
                     ("next 40 %", fg & (edge > median) & (edge <= top)),
                     ("steepest 10 %", fg & (edge > top))):
    share = error.sum(-1)[pixels].sum() / error.sum()
    print(f"foreground, {name} of the target's gradient: {share:.1%} of the error, "
          f"PSNR {-10 * math.log10(error[pixels].mean()):.2f} dB")
print("mean signed error over the foreground (fine-tuned - dvr), RGB:",
      np.round((ours - target)[fg].mean(0), 4).tolist())
row = np.concatenate([target, ours, start.clamp(0, 1).numpy(),
                      np.clip(np.abs(ours - target) * 4, 0, 1)], 1)
picture = Image.fromarray((row * 255).astype(np.uint8)).resize((1024, 256), Image.LANCZOS)
picture.save(os.environ.get("PNG", "docs/quality_probes/closeup_error.png"))
