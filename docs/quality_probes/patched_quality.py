"""Testing/bench/bench_quality.py with fine-tuning's constants patched from the environment:
LRMUL multiplies every learning rate (positions included), LRPOW replaces LR_WINDOW_POWER, MDECAY
MEANS_DECAY and DECAY LR_DECAY (optimize/finetune.py); FRESH replaces FRESH_SHARE, the share of
steps that draw a new view, and SMALLEST SMALLEST_VIEW, the smallest side of a new view as a share
of `size` (optimize/sampling.py). The other arguments are bench_quality.py's.

    LRMUL=1.3 python docs/quality_probes/patched_quality.py --scans popi00_thorax \
        --presets CT-Bone --out docs/quality_probes/popi00_thorax_rates13
"""

import os
import runpy
import sys

import RenderFMLib.optimize.finetune as finetune
import RenderFMLib.optimize.sampling as sampling

if "LRPOW" in os.environ:
    finetune.LR_WINDOW_POWER = float(os.environ["LRPOW"])
if "MDECAY" in os.environ:
    finetune.MEANS_DECAY = float(os.environ["MDECAY"])
if "DECAY" in os.environ:
    finetune.LR_DECAY = float(os.environ["DECAY"])
if "LRMUL" in os.environ:
    factor = float(os.environ["LRMUL"])
    finetune.LR_MEANS *= factor
    finetune.LR = {name: rate * factor for name, rate in finetune.LR.items()}
if "FRESH" in os.environ:
    sampling.FRESH_SHARE = float(os.environ["FRESH"])
if "SMALLEST" in os.environ:
    sampling.SMALLEST_VIEW = float(os.environ["SMALLEST"])
print("patched", finetune.LR_WINDOW_POWER, finetune.MEANS_DECAY, finetune.LR_DECAY,
      finetune.LR_MEANS, sampling.FRESH_SHARE, sampling.SMALLEST_VIEW, flush=True)
sys.argv = ["bench_quality.py", *sys.argv[1:]]
runpy.run_path("Testing/bench/bench_quality.py", run_name="__main__")
