"""Held-out PSNR every K steps of one fine-tune (sample, CT-Bone), per view, with the window log."""
import os, sys, time
sys.path.insert(0, os.environ.get("TREE", "/work/exp"))
import torch
from RenderFMLib.api import prepare
from RenderFMLib.volume import read_ct
from RenderFMLib.optimize import finetune as ft, sampling
from RenderFMLib.optimize.evaluate import heldout_scores
spacing = float(sys.argv[1]); steps = int(sys.argv[2]); seed = int(sys.argv[3]); every = int(sys.argv[4])
weights = os.environ.get("WEIGHTS") or None
ct = read_ct("/work/main/Resources/sample/ct.nii.gz")
g = prepare(ct, "/work/main/Resources/sample/segmentation.nii.gz", os.environ.get("PRESET", "CT-Bone"),
            weights=weights, spacing_mm=spacing)
train, held = sampling.views_for(g, ct, "dvr", size=512, crop=None, heldout_size=512, seed=seed)
state = ft._State(g, train, ft.FinetuneOptions(iterations=steps, seed=seed))
orig = train._fresh
def logged():
    w = orig(); print(f"  fresh at step {state.step}: size {w.size} box {w.box} dist {w.camera.distance() if hasattr(w.camera,'distance') else ''}", flush=True) if os.environ.get("LOGW") else None; return w
train._fresh = logged
def show():
    s = heldout_scores(state.gaussians(), held)
    print(f"step {state.step}: median {s.psnr:.2f} fg {s.ssim_fg:.3f} per view " + " ".join(f"{v[0]:.1f}" for v in s.per_view), flush=True)
show()
while state.step < steps:
    state.take_step(state.step / steps)
    if state.step % every == 0:
        show()
if os.environ.get("SAVE"):
    import numpy as np
    from PIL import Image
    from RenderFMLib.optimize.windows import render_window
    gg = state.gaussians(); p = {k: v.detach() for k, v in gg.params().items()}
    for i in (0, 2):
        v = held[i]
        with torch.no_grad():
            rgb, a = render_window(p, v.camera, v.size, (0, 0, v.size))
        err = (rgb.clamp(0, 1) - v.rgb).abs().sum(-1)
        row = torch.cat([rgb.clamp(0, 1), v.rgb, (err * 4).clamp(0, 1)[..., None].expand(-1, -1, 3)], 1)
        Image.fromarray((row.numpy() * 255).astype(np.uint8)).save(f"{os.environ['SAVE']}_v{i}.png")
        ys, xs = torch.nonzero(err > 0.15, as_tuple=True)
        print("view", i, "pixels err>0.15:", len(ys), "mse", float((err**2).mean()))
    ls = p["log_scales"].exp()
    print("pos scale max", ls[:, :3].max().item(), "q999", ls[:, :3].max(-1).values.quantile(0.999).item())
    print("dir scale min", ls[:, 3:].min().item(), "max", ls[:, 3:].max().item())
    torch.save({k: v for k, v in p.items()}, os.environ['SAVE'] + ".pt")
