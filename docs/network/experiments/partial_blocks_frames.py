"""Frame time at 512 px (median of 4 held-out orbit views, after a warm-up) of today's AGP against
the network trained with the added blocks (partial_blocks_weights) on AGP with them; run from the
repository root: python docs/network/experiments/partial_blocks_frames.py"""
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2] / "Testing" / "bench"))

import agp_probes  # noqa: E402
from bench_quality import find_scan, frame_times  # noqa: E402

from RenderFMLib import build  # noqa: E402
from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

WEIGHTS = HERE / "partial_blocks_weights.safetensors"
ROWS = [("popi00_thorax", "CT-Chest-Contrast-Enhanced"), ("example_ct", "CT-Bone"),
        ("lidc0314_chest", "CT-Chest-Contrast-Enhanced")]

for scan_name, preset in ROWS:
    scan = find_scan(scan_name)
    ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
    agp = prepare(ct, scan.seg, preset, weights=None)
    build.prime, agp_probes.VARIANT["on"] = agp_probes.prime_with_partial_blocks, True
    network = prepare(ct, scan.seg, preset, weights=WEIGHTS)
    build.prime, agp_probes.VARIANT["on"] = agp_probes._prime, False
    times = frame_times({"agp": agp, "partial": network}, heldout_cameras(agp, 4, 2)[:4])
    before, after = (statistics.median(times[name]) for name in ("agp", "partial"))
    print(f"{scan_name} | {preset} | {len(agp):,} -> {len(network):,} Gaussians | "
          f"{1000 * before:.0f} -> {1000 * after:.0f} ms ({after / before:.2f}x)", flush=True)
