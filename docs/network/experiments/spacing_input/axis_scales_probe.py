"""Probe (2026-12-06): AGP's position scales per RAS axis, 0.35 x the block's extent along that
axis, instead of round (0.35 x the geometric-mean block edge, DESIGN.md section 5): the position
log-scales of the AGP and network models get log(h_axis / h) added, and both are scored against
dvr on bench_network.py's held-out views (256 px, median PSNR / foreground SSIM).

    python docs/network/experiments/spacing_input/axis_scales_probe.py WEIGHTS \
        "cthead_dicom:CT-AAA;elastix_lung_small:CT-Bone"
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "Testing/bench")
sys.path.insert(0, str(Path(__file__).parents[2] / "voxel_order"))
from bench_quality import find_scan  # noqa: E402
from opacity_probe import score  # noqa: E402

from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402


def axis_ratio(ijk_to_ras: np.ndarray) -> np.ndarray:
    """The block's extent along RAS x, y, z over its geometric-mean edge."""
    matrix = np.asarray(ijk_to_ras)[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0)
    extent = np.linalg.norm(matrix, axis=1)  # along each RAS axis: |direction row x spacing|
    return extent / np.prod(spacing) ** (1 / 3)


def stretched(model, ratio: np.ndarray):
    params = {name: tensor.clone() for name, tensor in model.params().items()}
    params["log_scales"][:, :3] += torch.tensor(np.log(ratio), dtype=torch.float32)
    return type(model)(params, model.labels, model.ijk_to_ras, model.volume_shape, model.preset)


def main(weights: str, rows: str) -> None:
    for row in rows.split(";"):
        name, preset = row.split(":")
        scan = find_scan(name)
        ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        agp = prepare(ct, scan.seg, preset, weights=None)
        network = prepare(ct, scan.seg, preset, weights=weights)
        ratio = axis_ratio(agp.ijk_to_ras)
        cameras = heldout_cameras(agp, 4, 2)
        frames = [render_dvr(ct, load_preset(preset), camera, 256) for camera in cameras]
        refs = [(f.rgb.float().numpy(), f.alpha.float().numpy()) for f in frames]
        before = score(agp, cameras, refs), score(network, cameras, refs)
        after = score(stretched(agp, ratio), cameras, refs), \
            score(stretched(network, ratio), cameras, refs)
        print(f"{name} {preset} ratio {np.round(ratio, 2)}: AGP {before[0]} -> {after[0]}; "
              f"network {before[1]} -> {after[1]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
