"""Picture: the shipped network on example_ct (stored in RAS voxel order), CT-Chest-Contrast-
Enhanced, two held-out orbit views at 384 px: dvr | the network reading the CT in its own
order (as before 2026-12-06: the shading it learnt in LPS order comes out mirrored in x and y)
| the network reading it in LPS order (network/voxel_order.py), with PSNR against dvr and the
mean brightness over the pixels both cover, relative to dvr's.

    python docs/network/voxel_order/before_after.py
"""
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "Testing" / "bench"))
from bench_quality import find_scan  # noqa: E402

from RenderFMLib.api import prepare, render  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.network import predict  # noqa: E402
from RenderFMLib.network.voxel_order import VoxelOrder  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

PRESET, SIZE, VIEWS = "CT-Chest-Contrast-Enhanced", 384, (1, 3)
scan = find_scan("example_ct")
ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
now = prepare(ct, scan.seg, PRESET)
lps_order = predict.lps_order
predict.lps_order = lambda matrix: VoxelOrder((0, 1, 2), (False, False, False))
before = prepare(ct, scan.seg, PRESET)
predict.lps_order = lps_order
cameras = heldout_cameras(prepare(ct, scan.seg, PRESET, weights=None), 4, 2)
figure, axes = plt.subplots(len(VIEWS), 3, figsize=(9, 3 * len(VIEWS)), dpi=SIZE / 3)
for row, view in enumerate(VIEWS):
    reference = render_dvr(ct, load_preset(PRESET), cameras[view], SIZE)
    ref_rgb, ref_alpha = reference.rgb.float().numpy(), reference.alpha.float().numpy()
    panels = [("dvr", ref_rgb)]
    for name, gaussians in (("network, the CT's own order (before)", before),
                            ("network, LPS order (now)", now)):
        with torch.no_grad():
            frame = render(gaussians, cameras[view], SIZE)
        rgb, alpha = frame.rgb.clamp(0, 1).float().numpy(), frame.alpha.float().numpy()
        psnr = 10 * np.log10(1 / np.mean((rgb - ref_rgb) ** 2))
        both = (alpha > 0.9) & (ref_alpha > 0.9)
        brightness = rgb[both].sum() / ref_rgb[both].sum()
        panels.append((f"{name}\n{psnr:.2f} dB, brightness x{brightness:.2f}", rgb))
    for column, (title, image) in enumerate(panels):
        axes[row, column].imshow(image)
        axes[row, column].set_title(title, fontsize=8)
        axes[row, column].axis("off")
figure.suptitle(f"example_ct (never trained on), {PRESET}, held-out views {VIEWS}", fontsize=9)
figure.tight_layout()
figure.savefig(Path(__file__).with_name("before_after.png"))
print("wrote", Path(__file__).with_name("before_after.png"))
