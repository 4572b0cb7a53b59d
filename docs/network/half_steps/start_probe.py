"""Which part of the network's start holds back fine-tuning's close-up? Starts built from the
network's Gaussians with one field taken back to AGP's (AGP with the partial blocks, the base the
network adds to), scored as bench_half_steps.py scores (held-out views of the sample at 1.5 mm,
PRESET, CT-Bone by default), before and after STEPS steps of fine-tuning (0: before only).

    STEPS=100 SEED=0 [PRESET=CT-Bone] python docs/network/half_steps/start_probe.py [START ...]

START: agp, network, base (that base itself: AGP with the network's partial blocks), or
network-<field> (field from AGP: log_scales, sh, rgb, opacity_logits, corr_logits, dir_means,
means); a start followed by @agp-views fine-tunes with new views aimed as
from AGP's Gaussians (close-ups and windows at AGP's means drawn by AGP's opacity) instead of the
start's own.
"""

import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "Testing" / "bench"))
from bench_half_steps import ORBIT_VIEWS, misses, references, scored  # noqa: E402

from RenderFMLib.api import finetune, prepare  # noqa: E402
from RenderFMLib.build import build_gaussians  # noqa: E402
from RenderFMLib.gaussians import SixDGaussians  # noqa: E402
from RenderFMLib.loading import load_ct, load_labels  # noqa: E402
from RenderFMLib.optimize import sampling  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

CT, SEG = REPO / "Resources/sample/ct.nii.gz", REPO / "Resources/sample/segmentation.nii.gz"
SPACING, PRESET = 1.5, os.environ.get("PRESET", "CT-Bone")


def start(name: str, network: SixDGaussians, base: SixDGaussians) -> SixDGaussians:
    if name == "network":
        return network
    if name == "base":
        return base
    field = name.removeprefix("network-")
    params = network.params()
    params[field] = base.params()[field].clone()
    return SixDGaussians(params, network.labels, network.ijk_to_ras, network.volume_shape,
                         network.preset)


INIT = sampling.FreshViews.__init__


def aimed_as(gaussians: SixDGaussians | None) -> None:
    """From now on FreshViews aims its close-ups and windows as it would for `gaussians` (None:
    for the Gaussians it is given, as fine-tuning does)."""
    def patched(self, given, *args, **kwargs):
        INIT(self, given if gaussians is None else gaussians, *args, **kwargs)
    sampling.FreshViews.__init__ = patched


steps, seed = int(os.environ.get("STEPS", "100")), int(os.environ.get("SEED", "0"))
ct = read_ct(CT)
agp = prepare(ct, SEG, PRESET, weights=None, spacing_mm=SPACING)
network = prepare(ct, SEG, PRESET, spacing_mm=SPACING)
grid = load_ct(CT, None, SPACING)
base = build_gaussians(grid, load_labels(SEG, grid, "cpu"), load_preset(PRESET),
                       partial_blocks=True)
assert len(base) == len(network), (len(base), len(network))
cameras = heldout_cameras(agp, ORBIT_VIEWS, 2)
refs = references(ct, PRESET, cameras)
for arg in sys.argv[1:] or ["agp", "network"]:
    name, _, views = arg.partition("@")
    aimed_as(agp if views == "agp-views" else None)
    gaussians = agp if name == "agp" else start(name, network, base)
    runs = [("start", gaussians)]
    if steps:
        runs.append((f"{steps} steps", finetune(gaussians, ct, iterations=steps, budget_s=None,
                                               spacing_mm=SPACING, seed=seed).gaussians))
    for label, model in runs:
        views = scored(model, cameras, refs)
        dvr = views["dvr 512"]
        close_ups = ", ".join(f"{view['psnr']:.2f}" for view in dvr[ORBIT_VIEWS:])
        slicer = " / ".join(f"{statistics.median(v['ssim_fg'] for v in views[k]):.3f}"
                            for k in ("slicer-cpu 256", "slicer-cpu 512"))
        print(f"{arg:22s} {label:9s} dvr 512 median "
              f"{statistics.median(v['psnr'] for v in dvr):.2f} dB, close-ups {close_ups} dB; "
              f"Slicer fg SSIM {slicer}; bars missed: {len(misses(views))}", flush=True)
