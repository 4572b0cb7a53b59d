"""Make docs/pathtraced/heldout.png: fine-tuning against the path-traced look, on views it never
trained on.

    renderfm make-gt Resources/sample/ct.nii.gz --presets CT-AAA --renderer pathtraced \
        --views 6 --elevations=-20,20 --size 128 --spp 64 -o runs/pt/cache
    renderfm finetune Resources/sample/ct.nii.gz --preset CT-AAA --weights none \
        --target runs/pt/cache/ct/CT-AAA/pathtraced-128px-64spp --budget-s 300 \
        -o runs/pt/ft.safetensors
    python docs/pathtraced/make_picture.py runs/pt/cache/ct/CT-AAA/pathtraced-128px-64spp \
        runs/pt/ft.safetensors

Rows: the held-out views (3, 7 and 11: every 4th of the cache; finetune trains on the others);
columns: the path-traced target, AGP alone, AGP fine-tuned; each image 128 px shown at 256.
Prints SSIM and PSNR of both against the target per view.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from RenderFMLib.api import prepare, render
from RenderFMLib.demo import sample_paths
from RenderFMLib.evaluation.metrics import psnr, ssim
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.groundtruth.cache import read_views
from RenderFMLib.optimize.views import HELDOUT_EVERY

SHOWN = 256


def main(folder: str, model: str) -> None:
    settings, views = read_views(folder)
    size = settings["size"]
    agp = prepare(sample_paths()[0], None, "CT-AAA", weights=None)
    tuned = SixDGaussians.load(model)
    rows = []
    for index, (camera, image) in enumerate(views):
        if index % HELDOUT_EVERY != HELDOUT_EVERY - 1:  # sampling.views_for's held-out views
            continue
        target = torch.from_numpy(image.rgb)
        cells = [image.rgb]
        scores = []
        for gaussians in (agp, tuned):
            rgb = render(gaussians, camera, size).rgb.clamp(0, 1).cpu()
            scores.append(f"SSIM {ssim(rgb, target):.3f}, PSNR {psnr(rgb, target):.2f} dB")
            cells.append(rgb.numpy())
        print(f"view {index}: AGP {scores[0]}; fine-tuned {scores[1]}")
        rows.append(np.concatenate(cells, axis=1))
    picture = (np.concatenate(rows, axis=0) * 255.0 + 0.5).astype(np.uint8)
    scale = SHOWN // size
    Image.fromarray(picture).resize((picture.shape[1] * scale, picture.shape[0] * scale),
                                    Image.NEAREST).save(Path(__file__).with_name("heldout.png"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
