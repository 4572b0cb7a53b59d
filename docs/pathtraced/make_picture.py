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
Prints PSNR, SSIM and foreground SSIM of both against the target per view.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from RenderFMLib.api import prepare, render
from RenderFMLib.demo import sample_paths
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.optimize.evaluate import view_scores
from RenderFMLib.optimize.sampling import views_for

SHOWN = 256


def main(folder: str, model: str) -> None:
    agp = prepare(sample_paths()[0], None, "CT-AAA", weights=None)
    tuned = SixDGaussians.load(model)
    # finetune's own split of the folder (it also checks the preset and the CT)
    _, heldout = views_for(agp, None, folder, size=0, crop=0, heldout_size=0)
    rows = []
    for number, view in enumerate(heldout):
        cells = [view.rgb.numpy()]
        scores = []
        for gaussians in (agp, tuned):
            frame = render(gaussians, view.camera, view.size)
            psnr, ssim, ssim_fg = view_scores(frame.rgb, frame.alpha, view)
            scores.append(f"{psnr:.2f} dB, SSIM {ssim:.3f}, foreground SSIM {ssim_fg:.3f}")
            cells.append(frame.rgb.clamp(0, 1).cpu().numpy())
        print(f"held-out view {number + 1}: AGP {scores[0]}; fine-tuned {scores[1]}")
        rows.append(np.concatenate(cells, axis=1))
    picture = (np.concatenate(rows, axis=0) * 255.0 + 0.5).astype(np.uint8)
    scale = SHOWN // heldout[0].size
    Image.fromarray(picture).resize((picture.shape[1] * scale, picture.shape[0] * scale),
                                    Image.NEAREST).save(Path(__file__).with_name("heldout.png"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
