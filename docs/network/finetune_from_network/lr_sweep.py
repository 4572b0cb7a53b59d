"""Fine-tuning's learning rates in short runs: `example_ct` from AGP for 300 steps and from the
shipped network for 150, with every rate (position included) scaled, and optionally half the
decay (the rates end at the square root of their usual end factors). Scores are fine-tuning's own
held-out report: 4 orbit views and 2 close-ups at 256 px against `dvr`.

    python docs/network/finetune_from_network/lr_sweep.py [PRESET ...]
"""

import sys
import time
from pathlib import Path

import RenderFMLib.optimize.finetune as ft
from RenderFMLib.api import finetune, prepare
from RenderFMLib.volume import read_ct

REPO = Path(__file__).resolve().parents[3]
CT = REPO.parent / "shared/data/totalseg/example_ct.nii.gz"
SEG = REPO.parent / "shared/data/totalseg/example_seg_fast_force_split.nii.gz"
WEIGHTS = REPO / "Resources/weights/renderfm-local.safetensors"
RATES, MEANS_RATE = dict(ft.LR), ft.LR_MEANS
DECAYS = ft.LR_DECAY, ft.MEANS_DECAY
RUNS = [("agp", 300, scale, 1.0) for scale in (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)] + [
    ("network", 150, scale, decay) for scale, decay in
    ((1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (1.0, 0.5), (2.0, 0.5), (3.0, 0.5))]


def set_rates(scale: float, decay_power: float) -> None:
    ft.LR = {name: rate * scale for name, rate in RATES.items()}
    ft.LR_MEANS = MEANS_RATE * scale
    ft.LR_DECAY, ft.MEANS_DECAY = (factor ** decay_power for factor in DECAYS)


def main() -> None:
    ct = read_ct(CT)
    for preset in sys.argv[1:] or ["CT-Chest-Contrast-Enhanced", "CT-AAA", "CT-Bone"]:
        starts = {"agp": prepare(ct, SEG, preset, weights=None),
                  "network": prepare(ct, SEG, preset, weights=WEIGHTS)}
        for start, steps, scale, decay_power in RUNS:
            set_rates(scale, decay_power)
            began = time.time()
            result = finetune(starts[start], ct, iterations=steps, budget_s=None, size=256,
                              heldout_size=256)
            print(f"{preset} | {start} + {steps} | x{scale} | decay^{decay_power} | "
                  f"{result.after.psnr:.2f} | {result.after.ssim_fg:.3f} | "
                  f"{time.time() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
