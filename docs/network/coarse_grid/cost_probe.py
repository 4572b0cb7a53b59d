"""Probe (2026-12-06): what the 2 mm grid costs on the two coarse scans: Gaussians, preparation
time (AGP alone and with the network of the fold that never trained on them) and the median of
3 frames at 512 px from the default camera (CPU kernels, 2 threads), on the CT's own grid and
on 2 mm.

    python docs/network/coarse_grid/cost_probe.py
"""
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, "Testing/bench")
sys.path.insert(0, str(Path(__file__).parent))
from bench_quality import find_scan  # noqa: E402
from coarse_probe import on_own_grid  # noqa: E402

from RenderFMLib.api import default_camera, prepare, render  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

WEIGHTS = "docs/network/loso/fold_c_lps_weights.safetensors"


def timed(work, *args):
    """(work(*args), seconds it took)."""
    start = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - start


def on_default_grid(ct, seg, preset: str, weights):
    return prepare(ct, seg, preset, weights=weights)


def main() -> None:
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    for name in ("cthead_dicom", "elastix_lung_small"):
        scan = find_scan(name)
        ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        print(name, ct.shape, ct.spacing)
        for grid, prepared in (("own", on_own_grid), ("2 mm", on_default_grid)):
            for preset in ("CT-Bone", "CT-AAA"):
                _, agp_s = timed(prepared, ct, scan.seg, preset, None)
                network, network_s = timed(prepared, ct, scan.seg, preset, WEIGHTS)
                camera = default_camera(network)
                render(network, camera, 512)
                frame_s = sorted(timed(render, network, camera, 512)[1] for _ in range(3))
                print(f"  {grid} {preset}: {network.means.shape[0]:,} Gaussians, "
                      f"prepare {agp_s:.2f} s AGP / {network_s:.2f} s network, frame "
                      f"{frame_s[1]:.2f} s", flush=True)


if __name__ == "__main__":
    main()
