"""Probe (2026-12-06): does reading a coarse CT on a 2 mm grid (loading.default_spacing) help
on scans that did not choose the rule? Each scan is resampled to a coarse grid first (the CT a
user would have), then AGP and the network are prepared on that CT's own grid and on the
default one, and scored against dvr of the coarse CT over bench_network.py's held-out views
(256 px, medians; cameras from AGP on the CT's own grid, the same for all four).

    python docs/network/coarse_grid/coarse_probe.py WEIGHTS popi00_thorax 3.5,3.5,5
"""
import sys
import warnings
from pathlib import Path

sys.path.insert(0, "Testing/bench")
sys.path.insert(0, str(Path(__file__).parents[1] / "voxel_order"))
from bench_quality import find_scan  # noqa: E402
from opacity_probe import score  # noqa: E402

from RenderFMLib import loading  # noqa: E402
from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.errors import RenderFMWarning  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402
from RenderFMLib.volume import read_ct, resample_spaced  # noqa: E402

PRESETS = ("CT-Bone", "CT-Chest-Contrast-Enhanced", "CT-AAA", "CT-Muscle")


def on_own_grid(ct, seg, preset: str, weights):
    """prepare() with the coarse rule off: the CT's own grid."""
    kept, loading.COARSE_MM = loading.COARSE_MM, float("inf")
    try:
        return prepare(ct, seg, preset, weights=weights)
    finally:
        loading.COARSE_MM = kept


def main(weights: str, name: str, spacing_ijk: tuple[float, float, float]) -> None:
    scan = find_scan(name)
    ct = resample_spaced(read_ct(scan.ct, hu_offset=scan.hu_offset), spacing_ijk)
    print(f"{name} on {' x '.join(f'{s:g}' for s in spacing_ijk)} mm: {ct.shape} voxels, "
          f"default grid {loading.default_spacing(ct)} mm", flush=True)
    for preset in PRESETS:
        agp_own = on_own_grid(ct, scan.seg, preset, None)
        cameras = heldout_cameras(agp_own, 4, 2)
        frames = [render_dvr(ct, load_preset(preset), camera, 256) for camera in cameras]
        references = [(f.rgb.float().numpy(), f.alpha.float().numpy()) for f in frames]
        rows = {"AGP own": agp_own, "network own": on_own_grid(ct, scan.seg, preset, weights),
                "AGP 2 mm": prepare(ct, scan.seg, preset, weights=None),
                "network 2 mm": prepare(ct, scan.seg, preset, weights=weights)}
        scored = {key: score(model, cameras, references) for key, model in rows.items()}
        cells = ", ".join(f"{key} {p:.2f} / {s:.3f} ({rows[key].means.shape[0]:,})"
                          for key, (p, s) in scored.items())
        print(f"  {preset}: {cells}", flush=True)


if __name__ == "__main__":
    warnings.simplefilter("ignore", RenderFMWarning)
    main(sys.argv[1], sys.argv[2], tuple(float(v) for v in sys.argv[3].split(",")))
