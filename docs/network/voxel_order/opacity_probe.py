"""Probe (2026-12-06): on the network's model of a scan and preset, scale the opacity (alpha =
k x sigmoid) and separately the albedo, and score against dvr on bench_network.py's held-out
views (256 px, median PSNR / foreground SSIM); a second argument names other weights.

    python docs/network/voxel_order/opacity_probe.py "example_ct:CT-Muscle;popi00_thorax:CT-Muscle"
"""
import sys

import numpy as np
import torch

sys.path.insert(0, "Testing/bench")
from bench_quality import find_scan, scores, timed_render  # noqa: E402

from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.optimize.evaluate import foreground  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402


def scaled(model, opacity_gain: float, albedo_gain: float):
    """The model with alpha x opacity_gain (kept in (0, 1)) and rgb x albedo_gain."""
    params = {name: tensor.clone() for name, tensor in model.params().items()}
    alpha = (torch.sigmoid(params["opacity_logits"]) * opacity_gain).clamp(1e-6, 1 - 1e-6)
    params["opacity_logits"] = torch.log(alpha / (1 - alpha))
    params["rgb"] = (params["rgb"] * albedo_gain).clamp(0, 1)
    return type(model)(params, model.labels, model.ijk_to_ras, model.volume_shape, model.preset)


def score(model, cameras, references) -> tuple[float, float]:
    """Median PSNR and foreground SSIM over the views."""
    psnrs, fg = [], []
    for camera, (rgb_ref, alpha_ref) in zip(cameras, references, strict=True):
        rgb, alpha, _ = timed_render(model, camera, 256)
        mask = foreground(torch.from_numpy(alpha), torch.from_numpy(alpha_ref)).numpy()
        result = scores(rgb, rgb_ref, mask)
        psnrs.append(result["psnr"])
        fg.append(result["ssim_fg"])
    return round(float(np.median(psnrs)), 2), round(float(np.median(fg)), 3)


def main(rows: str, weights: str | None) -> None:
    for row in rows.split(";"):
        name, preset = row.split(":")
        scan = find_scan(name)
        ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        agp = prepare(ct, scan.seg, preset, weights=None)
        network = prepare(ct, scan.seg, preset, **({} if weights is None else
                                                   {"weights": weights}))
        cameras = heldout_cameras(agp, 4, 2)
        frames = [render_dvr(ct, load_preset(preset), camera, 256) for camera in cameras]
        references = [(f.rgb.float().numpy(), f.alpha.float().numpy()) for f in frames]
        print(f"{name} {preset}: agp {score(agp, cameras, references)}", flush=True)
        for opacity_gain in (0.6, 0.8, 1.0):
            for albedo_gain in (0.9, 1.0):
                result = score(scaled(network, opacity_gain, albedo_gain), cameras, references)
                print(f"  opacity x{opacity_gain} albedo x{albedo_gain}: {result}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
