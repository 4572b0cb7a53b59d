"""Frame time at 512 px (median of 4 held-out orbit views, after a warm-up) of AGP alone against
a network trained with the partial blocks (the shipped one by default, or the weights given) on
AGP with them; run from the repository root:

    python docs/network/experiments/partial_blocks_frames.py [WEIGHTS]"""
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "Testing" / "bench"))

from bench_quality import find_scan, frame_times  # noqa: E402

from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.network.weights import SHIPPED  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

WEIGHTS = sys.argv[1] if len(sys.argv) > 1 else SHIPPED
ROWS = [("popi00_thorax", "CT-Chest-Contrast-Enhanced"), ("example_ct", "CT-Bone"),
        ("lidc0314_chest", "CT-Chest-Contrast-Enhanced")]

for scan_name, preset in ROWS:
    scan = find_scan(scan_name)
    ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
    agp = prepare(ct, scan.seg, preset, weights=None)
    network = prepare(ct, scan.seg, preset, weights=WEIGHTS)
    times = frame_times({"agp": agp, "partial": network}, heldout_cameras(agp, 4, 2)[:4])
    before, after = (statistics.median(times[name]) for name in ("agp", "partial"))
    print(f"{scan_name} | {preset} | {len(agp):,} -> {len(network):,} Gaussians | "
          f"{1000 * before:.0f} -> {1000 * after:.0f} ms ({after / before:.2f}x)", flush=True)
