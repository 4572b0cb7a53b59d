"""Score a saved fine-tuned model (argv[1]) on the held-out views of the sample's 1.5 mm AGP
Gaussians (PRESET, default CT-Chest-Contrast-Enhanced) and write each view given (argv[3:]) as
fine-tuned | dvr | 4 x |error| to argv[2]_v<view>.png."""

import os
import sys

import numpy as np
import torch
from PIL import Image

from RenderFMLib.api import prepare
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.optimize import sampling
from RenderFMLib.optimize.windows import render_window
from RenderFMLib.volume import read_ct

g = SixDGaussians.load(sys.argv[1])
ct = read_ct("Resources/sample/ct.nii.gz")
start = prepare(ct, "Resources/sample/segmentation.nii.gz",
                os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced"), weights=None,
                spacing_mm=1.5)
start.preset = g.preset  # the saved model's look (its specular, say)
_, held = sampling.views_for(start, ct, "dvr", size=512, crop=None, heldout_size=512, seed=0)
params = {k: v.detach() for k, v in g.params().items()}
for i in (int(x) for x in sys.argv[3:]):
    view = held[i]
    with torch.no_grad():
        rgb, _ = render_window(params, view.camera, view.size, (0, 0, view.size))
    rgb = rgb.clamp(0, 1)
    error = rgb - view.rgb
    print(i, "psnr", float(-10 * torch.log10((error**2).mean())))
    magnified = (error.abs().sum(-1) * 4).clamp(0, 1)[..., None].expand(-1, -1, 3)
    row = torch.cat([rgb, view.rgb, magnified], 1)
    Image.fromarray((row.numpy() * 255).astype(np.uint8)).save(f"{sys.argv[2]}_v{i}.png")
