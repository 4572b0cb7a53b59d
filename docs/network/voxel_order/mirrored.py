"""Probe: each CT read by the network in LPS order (now) and in the mirrored order (x and y
flipped: what a CT stored the other way got before), with the weights that never trained on it;
median PSNR / foreground SSIM against dvr over bench_network's held-out views at 256 px.

    OMP_NUM_THREADS=1 python docs/network/voxel_order/mirrored.py WEIGHTS SCAN... """
import sys

import numpy as np
import torch

sys.path.insert(0, "Testing/bench")
from bench_quality import find_scan, timed_render  # noqa: E402

from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.evaluation.metrics import ssim  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.network import predict  # noqa: E402
from RenderFMLib.network.voxel_order import VoxelOrder  # noqa: E402
from RenderFMLib.optimize.evaluate import foreground  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

lps = predict.lps_order


def mirrored(matrix):
    order = lps(matrix)
    return VoxelOrder(order.source, (order.flipped[0], not order.flipped[1],
                                     not order.flipped[2]))


def psnr(a, b):
    return 10 * np.log10(1 / max(np.mean((a - b) ** 2), 1e-12))


weights, names = sys.argv[1], sys.argv[2:]
for name in names:
    scan = find_scan(name)
    ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
    for preset in ["CT-Bone", "CT-Chest-Contrast-Enhanced", "CT-AAA", "CT-Muscle"]:
        agp = prepare(ct, scan.seg, preset, weights=None)
        predict.lps_order = lps
        now = prepare(ct, scan.seg, preset, weights=weights)
        predict.lps_order = mirrored
        other = prepare(ct, scan.seg, preset, weights=weights)
        predict.lps_order = lps
        cams = heldout_cameras(agp, 4, 2)
        look = load_preset(preset)
        table = {"agp": [], "lps": [], "mirrored": []}
        for cam in cams:
            ref = render_dvr(ct, look, cam, 256)
            rgb, fg = ref.rgb.float().numpy(), foreground(ref.alpha.float()).numpy()
            for m, g in (("agp", agp), ("lps", now), ("mirrored", other)):
                out, alpha, _ = timed_render(g, cam, 256)
                mask = fg | foreground(torch.from_numpy(alpha)).numpy()
                table[m].append((psnr(out, rgb), ssim(out, rgb, mask)))
        cells = " | ".join(f"{np.median([v[0] for v in t]):.2f} / "
                           f"{np.median([v[1] for v in t]):.3f}" for t in table.values())
        print(f"| {name} | {preset} | {cells} |", flush=True)
