"""How many fine-tuning steps each start needs to reach the fine-tuning issue's bars: AGP against
the network (the network issue: "in at most half the iterations that fine-tuning from AGP needs").

    python Testing/bench/bench_half_steps.py [--scan sample] [--spacing 1.5] [--preset CT-Bone]
        [--agp-steps 100,150,200,250,300] [--network-steps 50,75,100,125,150] [--seed 0]
        [--weights shipped] [--out docs/network/half_steps/sample_CT-Bone_s0]

For each start (prepare(weights=None): AGP; prepare(weights=--weights): the network) and each
step count N, one fine-tuning run of exactly N steps (finetune(iterations=N, budget_s=None): its
learning rates decay over those N steps, as a run that ends at N does), scored on the held-out
views (heldout_cameras: 4 orbit views and 2 close-ups, never trained on) against the bars of the
fine-tuning issue for the sample:
- against Slicer's CPU ray cast at 256 and 512 px, foreground SSIM >= 0.92 (median over views);
- against dvr at 512 px, PSNR >= 34 dB and foreground SSIM >= 0.90, as the median over the views
  and in each close-up.
Slicer's and dvr's images are rendered once. Prints a markdown table (a row per run, the bars it
misses; "kept its start" where fine-tuning did not lower its held-out loss and returned the start)
and, per start, the fewest steps that met every bar; --out gets steps.md and steps.json,
written atomically after each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_quality import REPO, SLICER_BLACK, find_scan, load, machine, scores, timed_render, write

from RenderFMLib.api import finetune, prepare
from RenderFMLib.groundtruth.dvr import render_dvr
from RenderFMLib.groundtruth.renderers import groundtruth_problem, render_groundtruth
from RenderFMLib.optimize.evaluate import foreground
from RenderFMLib.optimize.views import heldout_cameras
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import read_ct

ORBIT_VIEWS, CLOSE_UPS = 4, 2
SLICER_FG_SSIM = 0.92            # against Slicer at 256 and 512 px
DVR_PSNR, DVR_FG_SSIM = 34.0, 0.90  # against dvr at 512 px, median view and each close-up
SIZES = (256, 512)


def references(ct, preset: str, cameras: list) -> dict:
    """{(reference, size): [(rgb [H, W, 3], foreground [H, W]) per camera]}: dvr at 512 px,
    Slicer's CPU ray cast at 256 and 512 px."""
    look = load_preset(preset)
    refs = {("dvr", 512): []}
    for camera in cameras:
        frame = render_dvr(ct, look, camera, 512)
        refs[("dvr", 512)].append((frame.rgb.float().numpy(),
                                   foreground(frame.alpha.float()).numpy()))
    for size in SIZES:
        refs[("slicer-cpu", size)] = [(image.rgb, image.rgb.max(-1) > SLICER_BLACK) for image
                                      in render_groundtruth("slicer-cpu", ct, look, cameras, size)]
    return refs


def scored(gaussians, cameras: list, refs: dict) -> dict:
    """{"reference size": [per-view {psnr, ssim, ssim_fg, ms_ssim}]} of the Gaussians."""
    out = {}
    for (ref, size), pairs in refs.items():
        views = []
        for camera, (target, covered) in zip(cameras, pairs, strict=True):
            rgb, alpha, _ = timed_render(gaussians, camera, size)
            views.append(scores(rgb, target, foreground(torch.from_numpy(alpha)).numpy()
                                | covered))
        out[f"{ref} {size}"] = views
    return out


def misses(views: dict) -> list[str]:
    """The bars these held-out scores miss, each with its value."""
    missed = []
    for size in SIZES:
        value = _median(views[f"slicer-cpu {size}"], "ssim_fg")
        if value < SLICER_FG_SSIM:
            missed.append(f"Slicer {size} px fg SSIM {value:.3f}")
    dvr = views["dvr 512"]
    checks = [("median view", [_median(dvr, s) for s in ("psnr", "ssim_fg")])]
    checks += [(f"close-up {n + 1}", [dvr[ORBIT_VIEWS + n][s] for s in ("psnr", "ssim_fg")])
               for n in range(CLOSE_UPS)]
    for name, (psnr, fg) in checks:
        if psnr < DVR_PSNR:
            missed.append(f"dvr {name} {psnr:.2f} dB")
        if fg < DVR_FG_SSIM:
            missed.append(f"dvr {name} fg SSIM {fg:.3f}")
    return missed


def _median(views: list[dict], score: str) -> float:
    return statistics.median(view[score] for view in views)


def table(rows: list[dict]) -> str:
    lines = ["| Start | Steps | Seconds | Slicer fg SSIM 256 / 512 | dvr 512 median PSNR / fg SSIM "
             "| Close-ups PSNR / fg SSIM | Bars missed |", "|---|---:|---:|---|---|---|---|"]
    for row in rows:
        views = row["views"]
        slicer = " / ".join(f"{_median(views[f'slicer-cpu {s}'], 'ssim_fg'):.3f}" for s in SIZES)
        dvr = views["dvr 512"]
        median = f"{_median(dvr, 'psnr'):.2f} / {_median(dvr, 'ssim_fg'):.3f}"
        close = ", ".join(f"{v['psnr']:.2f} / {v['ssim_fg']:.3f}" for v in dvr[ORBIT_VIEWS:])
        kept = " (kept its start)" if row["kept_start"] else ""
        lines.append(f"| {row['start']}{kept} | {row['steps']} | {row['seconds']:.0f} | {slicer} | "
                     f"{median} | {close} | {'; '.join(row['missed']) or 'none'} |")
    for start in dict.fromkeys(row["start"] for row in rows):
        met = [row["steps"] for row in rows if row["start"] == start and not row["missed"]]
        lines.append(f"\n{start}: fewest steps meeting every bar: "
                     f"{min(met) if met else 'none of those run'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan", default="sample")
    parser.add_argument("--spacing", type=float, default=1.5)
    parser.add_argument("--preset", default="CT-Bone")
    parser.add_argument("--agp-steps", default="100,150,200,250,300")
    parser.add_argument("--network-steps", default="50,75,100,125,150")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="shipped")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    problem = groundtruth_problem("slicer-cpu")
    if problem:
        parser.error(f"this benchmark scores against Slicer's CPU ray cast: {problem}")
    try:
        runs = [(start, int(n)) for start, counts in (("agp", args.agp_steps),
                                                      ("network", args.network_steps))
                for n in counts.split(",") if n]
    except ValueError:
        runs = []
    if not runs or any(n < 1 for _, n in runs) or not args.spacing > 0:
        parser.error("step counts must be comma-separated positive integers, --spacing a "
                     "positive number of mm")
    out = args.out or REPO / "docs" / "network" / "half_steps" / \
        f"{args.scan}_{args.preset}_s{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    scan = find_scan(args.scan)
    ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
    header = (f"Machine: {machine()}; load {load()}. {scan.name} at {args.spacing:g} mm, "
              f"{args.preset}, seed {args.seed}, network {args.weights}; held-out views: "
              f"{ORBIT_VIEWS} orbit + {CLOSE_UPS} close-ups")
    print(header, flush=True)
    starts = {"agp": prepare(ct, scan.seg, args.preset, weights=None, spacing_mm=args.spacing),
              "network": prepare(ct, scan.seg, args.preset, weights=args.weights,
                                 spacing_mm=args.spacing)}
    cameras = heldout_cameras(starts["agp"], ORBIT_VIEWS, CLOSE_UPS)
    refs = references(ct, args.preset, cameras)
    rows = []
    for start, steps in runs:
        began = time.perf_counter()
        result = finetune(starts[start], ct, iterations=steps, budget_s=None,
                          spacing_mm=args.spacing, seed=args.seed)
        views = scored(result.gaussians, cameras, refs)
        rows.append({"start": start, "steps": result.steps, "kept_start": result.kept_start,
                     "seconds": time.perf_counter() - began, "views": views,
                     "missed": misses(views)})
        print(f"{start} {result.steps} steps: {'; '.join(rows[-1]['missed']) or 'every bar'}",
              flush=True)
        write(out / "steps.md", header + "\n\n" + table(rows) + "\n")
        write(out / "steps.json", json.dumps({"header": header, "args": vars(args) | {
            "out": str(out)}, "rows": rows}, indent=1) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
