"""Probe (2026-12-06, not adopted): networks of one config trained apart (seeds 0 and 1), their
residuals averaged. Scores each member and the ensemble against dvr over bench_network.py's
held-out views (4 orbit + 2 close-ups at 256 px, medians), as gains over AGP.

    OMP_NUM_THREADS=1 python docs/network/experiments/ensemble/ensemble_probe.py \
        Resources/weights/renderfm-local.safetensors,runs/fold_a_s1/weights.safetensors \
        example_ct,popi00_thorax

(The quality files of fold_*/ are bench_network.py's on an ensemble weights file made by code
that was not kept; it averaged the members' residuals as Ensemble below does.)
"""
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, "Testing/bench")
sys.path.insert(0, str(Path(__file__).parents[2] / "voxel_order"))
from bench_quality import find_scan  # noqa: E402
from opacity_probe import score  # noqa: E402

from RenderFMLib import api  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.network.weights import cached_network  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

PRESETS = ("CT-Bone", "CT-Chest-Contrast-Enhanced", "CT-AAA", "CT-Muscle")


class Ensemble(torch.nn.Module):
    """The mean of the members' residuals; config and halo are the (shared) members'."""

    def __init__(self, members: list) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.config = members[0].config

    def halo_voxels(self) -> int | None:
        return self.members[0].halo_voxels()

    def forward(self, *args) -> torch.Tensor:
        return torch.stack([member(*args) for member in self.members]).mean(0)


def main(paths: list[str], scans: list[str]) -> None:
    ensemble = Ensemble([cached_network(Path(path), torch.device("cpu")) for path in paths])
    network = api._network
    api._network = lambda weights, device: (ensemble if weights == "ensemble"
                                            else network(weights, device))
    for name in scans:
        scan = find_scan(name)
        ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        for preset in PRESETS:
            agp = api.prepare(ct, scan.seg, preset, weights=None)
            cameras = heldout_cameras(agp, 4, 2)
            frames = [render_dvr(ct, load_preset(preset), camera, 256) for camera in cameras]
            references = [(f.rgb.float().numpy(), f.alpha.float().numpy()) for f in frames]
            base = score(agp, cameras, references)
            cells = [f"AGP {base[0]:.2f} / {base[1]:.3f}"]
            for label, weights in [*((f"member {i}", p) for i, p in enumerate(paths)),
                                   ("ensemble", "ensemble")]:
                psnr, ssim_fg = score(api.prepare(ct, scan.seg, preset, weights=weights),
                                      cameras, references)
                cells.append(f"{label} {psnr - base[0]:+.2f} / {ssim_fg - base[1]:+.3f}")
            print(f"{name} {preset}: " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1].split(","), sys.argv[2].split(","))
