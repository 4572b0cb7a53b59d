"""Probe (2026-12-06): the network's gain over AGP on a CT's own grid and on isotropic resamples
of it: median PSNR and foreground SSIM against dvr over bench_network.py's held-out views
(256 px), AGP and network prepared on the same grid each time.

    python docs/network/experiments/spacing_input/grid_probe.py WEIGHTS \
        "cthead_dicom:CT-AAA;elastix_lung_small:CT-Muscle" 0,3,2    # 0: the CT's own grid
"""
import sys
from pathlib import Path

sys.path.insert(0, "Testing/bench")
sys.path.insert(0, str(Path(__file__).parents[2] / "voxel_order"))
from bench_quality import find_scan  # noqa: E402
from opacity_probe import score  # noqa: E402

from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402


def main(weights: str, rows: str, spacings: list[float]) -> None:
    for row in rows.split(";"):
        name, preset = row.split(":")
        scan = find_scan(name)
        ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        cameras = heldout_cameras(prepare(ct, scan.seg, preset, weights=None), 4, 2)
        frames = [render_dvr(ct, load_preset(preset), camera, 256) for camera in cameras]
        references = [(f.rgb.float().numpy(), f.alpha.float().numpy()) for f in frames]
        for spacing in spacings:
            grid = {} if spacing == 0 else {"spacing_mm": spacing}
            agp = score(prepare(ct, scan.seg, preset, weights=None, **grid), cameras, references)
            network = score(prepare(ct, scan.seg, preset, weights=weights, **grid), cameras,
                            references)
            print(f"{name} {preset} grid {spacing or 'own'}: AGP {agp[0]:.2f} / {agp[1]:.3f}, "
                  f"network {network[0]:.2f} / {network[1]:.3f}, gain "
                  f"{network[0] - agp[0]:+.2f} / {network[1] - agp[1]:+.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [float(value) for value in sys.argv[3].split(",")])
