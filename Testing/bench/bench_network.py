"""Image quality of the network against AGP alone (and, with --ft-iterations, of fine-tuning from
each), against dvr and Slicer's CPU ray cast, on held-out views, per scan and preset.

    python Testing/bench/bench_network.py [--weights FILE] [--scans NAME|PATH ...]
        [--presets P ...] [--size 256] [--views-eval 4] [--ft-iterations 0] [--out docs/network]

Per scan x preset: prepare() with weights=None (AGP) and with the network (median time of
--runs preparations each), then renders from held-out cameras (heldout_cameras: orbit views and
close-ups) scored against dvr and Slicer's CPU ray cast (where slicer-core is installed):
medians over views of PSNR, SSIM, foreground SSIM and MS-SSIM (>= 161 px). Each row says whether
the weights' training saw the scan (their JSON lists the scans) and the preset. With
--ft-iterations N: fine-tuning from AGP for N steps and from the network for N / 2 steps (same
views and settings), scored the same way. Writes --out/quality.md, quality.json and
<scan>_<preset>.png (Slicer CPU | AGP | network | dvr at 512 px: an orbit view, a close-up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench_quality import (
    FRAME_SIZE,
    REPO,
    SCORES,
    evaluate,
    find_scan,
    items,
    load,
    log,
    machine,
    picture,
    write,
)

from RenderFMLib.api import finetune, prepare
from RenderFMLib.groundtruth.renderers import groundtruth_problem
from RenderFMLib.network.weights import SHIPPED, read_description, resolve_weights
from RenderFMLib.optimize.views import heldout_cameras
from RenderFMLib.volume import read_ct

COLUMNS = [("slicer-cpu", "Slicer CPU ray cast"), ("agp", "RenderFM AGP alone"),
           ("network", "RenderFM network"), ("dvr", "dvr")]
SCANS = ["example_ct", "popi00_thorax", "lidc0314_chest", "cthead_dicom", "ge_head_tilt"]
PRESETS = ["CT-Bone", "CT-Chest-Contrast-Enhanced", "CT-AAA", "CT-Muscle"]


def trained_on(weights: Path) -> tuple[set[str], set[str]]:
    """(resolved CT paths, preset names) the weights were trained on, from their JSON."""
    about = read_description(weights).get("about", {})
    scans = {str((REPO / path).resolve()) for path in about.get("scans", [])}
    manifest = about.get("manifest")
    presets: set[str] = set()
    if manifest and (REPO / manifest).is_file():
        for entry in json.loads((REPO / manifest).read_text())["scans"]:
            if not entry.get("heldout"):
                presets.update(entry["presets"])
    return scans, presets


def timed_prepare(ct, scan, preset: str, weights, runs: int):
    """(Gaussians, median seconds of `runs` preparations)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        gaussians = prepare(ct, scan.seg, preset, weights=weights)
        times.append(time.perf_counter() - started)
    return gaussians, statistics.median(times)


def tuned(gaussians, ct, iterations: int, args: argparse.Namespace):
    """Fine-tuned Gaussians after `iterations` steps (no time budget) and the run's facts."""
    result = finetune(gaussians, ct, iterations=iterations, budget_s=None, size=args.ft_size,
                      heldout_size=args.ft_size)
    return result.gaussians, {"steps": result.steps, "seconds": round(result.seconds, 1),
                              "heldout_after": result.after.line()}


def run_one(scan, ct, preset: str, args: argparse.Namespace, slicer: bool, seen) -> dict:
    tag = f"{scan.name} / {preset}"
    log(f"{tag}: preparing, AGP and network ({args.runs} runs each)")
    agp, agp_s = timed_prepare(ct, scan, preset, None, args.runs)
    network, network_s = timed_prepare(ct, scan, preset, args.weights, args.runs)
    models, finetuning = {"agp": agp, "network": network}, {}
    if args.ft_iterations:
        log(f"{tag}: fine-tuning from AGP ({args.ft_iterations} steps) and from the network "
            f"({args.ft_iterations // 2} steps)")
        models["agp+ft"], finetuning["agp+ft"] = tuned(agp, ct, args.ft_iterations, args)
        models["network+ft"], finetuning["network+ft"] = tuned(network, ct,
                                                               args.ft_iterations // 2, args)
    cameras = heldout_cameras(agp, args.views_eval, max(1, args.views_eval // 2))
    scored, _ = evaluate(ct, preset, models, cameras, [args.size], "cpu", slicer, tag)
    shown = [cameras[0], cameras[args.views_eval]]
    _, images = evaluate(ct, preset, {"agp": agp, "network": network}, shown, [FRAME_SIZE],
                         "cpu", slicer, f"{tag} (picture)")
    name = f"{scan.name}_{preset}.png"
    picture(images, [(0, "orbit view"), (1, "close-up")], args.out / name,
            f"{tag}, {FRAME_SIZE} px, held-out views", COLUMNS)
    scans, presets = seen
    return {"scan": scan.name, "preset": preset, "voxels": list(ct.shape),
            "trained_on_scan": str(scan.ct.resolve()) in scans,
            "trained_on_preset": preset in presets, "gaussians": len(agp),
            "prepare_agp_s": agp_s, "prepare_network_s": network_s, "finetuning": finetuning,
            "scores": scored, "picture": name}


def tables(rows: list[dict]) -> str:
    """Markdown: scores per model (AGP -> network [-> AGP+FT, network+FT]) and costs."""
    def fmt(value: float | None, score: str) -> str:
        return "-" if value is None else f"{value:.{2 if score == 'psnr' else 3}f}"

    lines = ["| Scan | Preset | Trained on scan / preset | Reference | Model | PSNR (dB) | SSIM | "
             "Foreground SSIM | MS-SSIM |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        seen = (f"{'yes' if row['trained_on_scan'] else 'no'} / "
                f"{'yes' if row['trained_on_preset'] else 'no'}")
        for reference, by_model in next(iter(row["scores"].values())).items():
            for model, values in by_model.items():
                cells = " | ".join(fmt(values[score], score) for score in SCORES)
                lines.append(f"| {row['scan']} | {row['preset']} | {seen} | {reference} | "
                             f"{model} | {cells} |")
    lines += ["", "| Scan | Preset | Gaussians | Prepare AGP (s) | Prepare network (s) | "
              "Fine-tuning |", "|---|---|---:|---:|---:|---|"]
    for row in rows:
        tuning = "; ".join(f"{model}: {facts['steps']} steps, {facts['seconds']:.0f} s"
                           for model, facts in row["finetuning"].items()) or "-"
        lines.append(f"| {row['scan']} | {row['preset']} | {row['gaussians']:,} | "
                     f"{row['prepare_agp_s']:.2f} | {row['prepare_network_s']:.2f} | {tuning} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=SHIPPED, help="network weights (the shipped ones)")
    parser.add_argument("--scans", nargs="+", default=SCANS)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--size", type=int, default=256, help="image side scored (256)")
    parser.add_argument("--views-eval", type=int, default=4,
                        help="held-out orbit views (4); close-ups: half as many, at least 1")
    parser.add_argument("--runs", type=int, default=3, help="preparations timed (3)")
    parser.add_argument("--ft-iterations", type=int, default=0,
                        help="fine-tuning steps from AGP (half as many from the network; 0: none)")
    parser.add_argument("--ft-size", type=int, default=256,
                        help="fine-tuning's largest view side (256)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "network")
    args = parser.parse_args()
    args.weights = resolve_weights(args.weights)
    seen = trained_on(args.weights)
    args.out.mkdir(parents=True, exist_ok=True)
    problem = groundtruth_problem("slicer-cpu")
    header = [f"Machine: {machine()}", f"Load average at start: {load()}",
              f"Weights: {args.weights}; held-out views: {args.views_eval} orbit + "
              f"{max(1, args.views_eval // 2)} close-ups at {args.size} px; cells: median over "
              "views" + (f"; slicer-cpu skipped: {problem}" if problem else "")]
    print("\n".join(header), flush=True)
    rows: list[dict] = []
    for scan in map(find_scan, items(args.scans)):
        ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        for preset in items(args.presets):
            rows.append(run_one(scan, ct, preset, args, problem is None, seen))
            text = "\n\n".join(["\n".join(header), tables(rows), "(still running)"]) + "\n"
            write(args.out / "quality.md", text)
    footer = f"Load average at end: {load()}"
    write(args.out / "quality.md", "\n\n".join(["\n".join(header), tables(rows), footer]) + "\n")
    write(args.out / "quality.json", json.dumps({"header": header, "rows": rows}, indent=1,
                                                default=str) + "\n")
    print("\n" + tables(rows) + "\n\n" + footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
