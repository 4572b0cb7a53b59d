"""Error map of the hard held-out close-up (view 4) for a saved fine-tuned model."""
import sys, torch, numpy as np
from PIL import Image
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.volume import read_ct
from RenderFMLib.optimize import sampling
from RenderFMLib.optimize.windows import render_window
g = SixDGaussians.load(sys.argv[1]); out = sys.argv[2]
ct = read_ct("/work/main/Resources/sample/ct.nii.gz")
import os
from RenderFMLib.api import prepare
g0 = prepare(ct, "/work/main/Resources/sample/segmentation.nii.gz", os.environ.get("PRESET", "CT-Chest-Contrast-Enhanced"), weights=None, spacing_mm=1.5)
g0.preset = g.preset
train, held = sampling.views_for(g0, ct, "dvr", size=512, crop=None, heldout_size=512, seed=0)
p = {k: v.detach() for k, v in g.params().items()}
for i in [int(x) for x in sys.argv[3:]]:
    v = held[i]
    with torch.no_grad():
        rgb, a = render_window(p, v.camera, v.size, (0, 0, v.size))
    rgb = rgb.clamp(0, 1)
    d = rgb - v.rgb
    mse = (d ** 2).mean(); print(i, "psnr", float(-10 * torch.log10(mse)))
    # where is the error: split by target local gradient magnitude
    t = v.rgb.mean(-1)
    gx = (t[:, 1:] - t[:, :-1]).abs()[:-1]; gy = (t[1:] - t[:-1]).abs()[:, :-1]
    gm = torch.maximum(gx, gy); e = (d ** 2).mean(-1)[:-1, :-1]
    for lo, hi in ((0, .01), (.01, .03), (.03, .1), (.1, 9)):
        m = (gm >= lo) & (gm < hi)
        print(f"  grad {lo}-{hi}: {float(m.float().mean()):.3f} of pixels, {float(e[m].sum() / e.sum()):.3f} of error")
    # chroma vs luminance error
    lum = d.mean(-1, keepdim=True); print("  share of error in luminance", float((lum ** 2).sum() * 3 / (d ** 2).sum()))
    print("  mean signed error per channel", d.mean((0, 1)).tolist())
    err = (d.abs().sum(-1) * 4).clamp(0, 1)[..., None].expand(-1, -1, 3)
    row = torch.cat([rgb, v.rgb, err], 1)
    Image.fromarray((row.numpy() * 255).astype(np.uint8)).save(f"{out}_v{i}.png")
