"""bench_quality.py with every step drawing a new view from 224 px windows (POPI's 239 px)."""
import runpy
import sys

sys.path.insert(0, "Testing/bench")
from RenderFMLib.optimize import sampling  # noqa: E402

sampling.FRESH_EVERY_STEP_SIDE = 224
sys.argv = ["bench_quality.py", "--scans", "popi00_thorax", "--presets", "CT-Bone",
            "--out", "docs/quality_field/popi00_thorax_agp_every"]
runpy.run_path("Testing/bench/bench_quality.py", run_name="__main__")
