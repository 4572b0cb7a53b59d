"""Image quality of AGP and fine-tuned Gaussians against dvr and Slicer's CPU ray cast, per scan.

    python Testing/bench/bench_quality.py [--scans NAME|PATH ...] [--presets P ...] [--budget-s 300]
        [--sizes 256,512] [--views-eval 4] [--ft-iterations 6000] [--ft-size 512]
        [--ft-heldout-size 512] [--ft-seed 0] [--ft-crop N] [--ft-densify] [--spacing MM]
        [--device cpu]
        [--start-weights shipped|FILE] [--out docs/quality]

Per scan x preset: prepare(weights=None) (AGP alone, not the network) and finetune() against dvr,
starting from AGP or, with --start-weights, from that network's Gaussians (then scored too),
timed (--budget-s includes its dvr targets; --ft-* are finetune()'s iterations, size,
heldout_size, seed, crop and densify: a run of a few hundred steps can move 1-3 dB with the seed,
docs/finetuning.md, "Which views a step sees", so compare over seeds), then AGP and fine-tuned
renders from held-out cameras (heldout_cameras: orbit views and close-ups, never trained on) at
each size scored against dvr and Slicer's CPU ray cast (where slicer-core is installed): medians
over views of PSNR, SSIM, foreground SSIM (pixels either image covers), MS-SSIM (>= 161 px).
Frame time: median over the held-out orbit views at 512 px, after a warm-up. After each scan x
preset, --out gets quality.md, quality.json (per view too) and <scan>_<preset>.png (Slicer CPU |
AGP | fine-tuned | dvr at 512 px, an orbit view and a close-up). Scans: names below or CT paths.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from RenderFMLib.api import finetune, prepare, render
from RenderFMLib.evaluation.metrics import MS_SSIM_MIN_SIDE, SSIM_WINDOW, ms_ssim, psnr, ssim
from RenderFMLib.groundtruth.dvr import render_dvr
from RenderFMLib.groundtruth.renderers import groundtruth_problem, render_groundtruth
from RenderFMLib.optimize.evaluate import foreground
from RenderFMLib.optimize.views import heldout_cameras
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import Volume, read_ct

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
PRESETS = ["CT-Bone", "CT-Chest-Contrast-Enhanced", "CT-AAA"]
FRAME_SIZE = 512  # frame times and pictures
SLICER_BLACK = 2.0 / 255.0  # Slicer's images have no alpha: foreground = max channel above this
MODELS = ("agp", "network", "finetuned")  # in table order; "network" with --start-weights
SCORES = ("psnr", "ssim", "ssim_fg", "ms_ssim")
STARTED = time.monotonic()


@dataclass(frozen=True)
class Scan:
    """A CT, its optional segmentation and HU offset."""

    name: str
    ct: Path
    seg: Path | None = None
    hu_offset: float | None = None


# The real CTs of shared/data (its README). Left out: totalseg/example_ct_sm, the first 30 slices
# of example_ct; the bundled sample, a crop of example_ct, runs on request ("sample").
SCANS = [
    Scan("example_ct", DATA / "totalseg/example_ct.nii.gz",
         DATA / "totalseg/example_seg_fast_force_split.nii.gz"),  # the seg on example_ct's grid
    Scan("cthead_dicom", DATA / "slicer_cthead_dicom", None, -1024.0),  # stored without rescale
    Scan("lidc0314_chest", DATA / "more_ct/lidc0314_chest/ct.nii.gz"),
    Scan("popi00_thorax", DATA / "more_ct/popi00_thorax/ct.nii.gz"),
    Scan("ge_head_tilt", DATA / "more_ct/ge_head_tilt/ct.nii.gz"),
    Scan("elastix_lung_small", DATA / "more_ct/elastix_lung_small/ct.mha",
         DATA / "more_ct/elastix_lung_small/lung_mask_on_ct_grid.nii.gz"),
]
SAMPLE = Scan("sample", REPO / "Resources/sample/ct.nii.gz",
              REPO / "Resources/sample/segmentation.nii.gz")


def log(message: str) -> None:
    """One progress line on stderr, with the seconds since the start."""
    print(f"[{time.monotonic() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def find_scan(item: str) -> Scan:
    """A scan by name or path (a known scan's entry, else a sibling segmentation.nii.gz)."""
    for scan in [*SCANS, SAMPLE]:
        if item == scan.name or Path(item).resolve() == scan.ct.resolve():
            return scan
    path = Path(item)
    seg = path.parent / "segmentation.nii.gz"
    name = path.parent.name if path.name.startswith("ct.") else path.name.split(".")[0]
    return Scan(name, path, seg if seg.is_file() else None)


def items(values: list[str]) -> list[str]:
    """Command-line values, each possibly comma-separated, flattened."""
    return [part for value in values for part in value.split(",") if part]


def machine() -> str:
    """CPU model (/proc/cpuinfo), core count, torch version and threads."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor() or platform.machine())
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def load() -> str:
    """The 1-minute load average."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def timed_render(gaussians, camera, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(rgb [H, W, 3], alpha [H, W], seconds) of api.render, without gradients."""
    started = time.perf_counter()
    with torch.no_grad():
        frame = render(gaussians, camera, size)
        if frame.rgb.is_cuda:
            torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return frame.rgb.clamp(0, 1).float().cpu().numpy(), frame.alpha.float().cpu().numpy(), seconds


def scores(rgb: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict:
    """PSNR, SSIM, foreground SSIM and MS-SSIM; None for SSIM over a mask with no pixel off the
    SSIM window's border, and for MS-SSIM under MS_SSIM_MIN_SIDE."""
    inner = mask[SSIM_WINDOW // 2:-(SSIM_WINDOW // 2), SSIM_WINDOW // 2:-(SSIM_WINDOW // 2)]
    return {"psnr": psnr(rgb, ref), "ssim": ssim(rgb, ref),
            "ssim_fg": ssim(rgb, ref, mask) if inner.any() else None,
            "ms_ssim": ms_ssim(rgb, ref) if min(rgb.shape[:2]) >= MS_SSIM_MIN_SIDE else None}


def evaluate(ct: Volume, preset: str, models: dict, cameras: list, sizes: list[int],
             device: str, slicer: bool, tag: str) -> tuple[dict, dict]:
    """({size: {reference: {model: {score: median, "per_view": [...]}}}}, {(source, view): rgb}
    at FRAME_SIZE) of the models against the references from every camera at every size."""
    results, images, look = {}, {}, load_preset(preset)
    for size in sizes:
        log(f"{tag}: references at {size} px ({len(cameras)} views)")
        refs = {"dvr": []}
        for camera in cameras:
            frame = render_dvr(ct, look, camera, size, device=device)
            refs["dvr"].append((frame.rgb.float().cpu().numpy(),
                                foreground(frame.alpha.float().cpu()).numpy()))
        if slicer:
            refs["slicer-cpu"] = [(image.rgb, image.rgb.max(-1) > SLICER_BLACK) for image in
                                  render_groundtruth("slicer-cpu", ct, look, cameras, size)]
        log(f"{tag}: AGP and fine-tuned at {size} px, scoring")
        per_view = {ref: {model: [] for model in models} for ref in refs}
        for model, gaussians in models.items():
            for view, camera in enumerate(cameras):
                rgb, alpha, _ = timed_render(gaussians, camera, size)
                ours = foreground(torch.from_numpy(alpha)).numpy()
                for ref, pairs in refs.items():
                    per_view[ref][model].append(scores(rgb, pairs[view][0], ours | pairs[view][1]))
                if size == FRAME_SIZE:
                    images[(model, view)] = rgb
        images.update({(ref, view): pair[0] for ref, pairs in refs.items()
                       for view, pair in enumerate(pairs) if size == FRAME_SIZE})
        results[size] = {ref: {model: {**{s: _median([v[s] for v in views]) for s in SCORES},
                                       "per_view": views} for model, views in by_model.items()}
                         for ref, by_model in per_view.items()}
    return results, images


def _median(values: list) -> float | None:
    """Median of the values that are not None (None if all are)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def frame_times(models: dict, cameras: list) -> dict[str, list[float]]:
    """Render seconds at FRAME_SIZE of each model from each camera, after a warm-up frame each;
    the models take turns per camera, so that other work on the machine slows them alike."""
    for gaussians in models.values():
        timed_render(gaussians, cameras[0], FRAME_SIZE)
    times = {model: [] for model in models}
    for camera in cameras:
        for model, gaussians in models.items():
            times[model].append(timed_render(gaussians, camera, FRAME_SIZE)[2])
    return times


COLUMNS = [("slicer-cpu", "Slicer CPU ray cast"), ("agp", "RenderFM AGP"),
           ("finetuned", "RenderFM fine-tuned"), ("dvr", "dvr")]


def picture(images: dict, views: list[tuple[int, str]], path: Path, title: str,
            columns: list[tuple[str, str]] = COLUMNS) -> None:
    """Rows (one per view) of the columns' images (by default Slicer CPU | AGP | fine-tuned |
    dvr), labelled, leaving out a column with no image (Slicer where it is not installed);
    written atomically."""
    from PIL import Image, ImageDraw

    columns = [column for column in columns if any(key[0] == column[0] for key in images)]
    band, side = 18, FRAME_SIZE
    canvas = Image.new("RGB", (len(columns) * side, band + len(views) * (side + band)), "black")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), title, fill="white")
    for row, (view, label) in enumerate(views):
        top = band + row * (side + band)
        for column, (source, name) in enumerate(columns):
            draw.text((column * side + 4, top + 3), f"{name}, {label}", fill="white")
            rgb = images.get((source, view))
            if rgb is not None:
                canvas.paste(Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)),
                             (column * side, top + band))
    write(path, canvas)


def write(path: Path, content) -> None:
    """Write text or a PIL image atomically (temporary file, then os.replace)."""
    temporary = path.with_name(path.name + ".tmp")
    if isinstance(content, str):
        temporary.write_text(content)
    else:
        content.save(temporary, format="PNG")
    os.replace(temporary, path)


def tables(rows: list[dict]) -> str:
    """The markdown tables: scores (AGP -> fine-tuned) and costs."""
    def fmt(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["| Scan | Preset | px | Reference | PSNR (dB) | SSIM | Foreground SSIM | MS-SSIM |",
             "|---|---|---:|---|---|---|---|---|"]
    for row in rows:
        for size, by_ref in row["scores"].items():
            for ref, by_model in by_ref.items():
                cells = [" -> ".join(fmt(by_model[m][s], 2 if s == "psnr" else 3)
                                     for m in MODELS if m in by_model)
                         for s in SCORES]
                lines.append(f"| {row['scan']} | {row['preset']} | {size} | {ref} | "
                             + " | ".join(cells) + " |")
    lines += ["", "| Scan | Preset | Gaussians AGP | Gaussians fine-tuned | Prepare (s) | "
              "Fine-tune (s) | Steps | Stopped | Frame AGP (ms) | Frame fine-tuned (ms) | Ratio |",
              "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        stopped = row["stopped"] + (", kept its start" if row["kept_start"] else "")
        lines.append(
            f"| {row['scan']} | {row['preset']} | {row['gaussians_agp']:,} | "
            f"{row['gaussians_finetuned']:,} | {row['prepare_s']:.1f} | {row['finetune_s']:.0f} | "
            f"{row['steps']} | {stopped} | {1000 * row['frame_agp_s']:.0f} | "
            f"{1000 * row['frame_finetuned_s']:.0f} | "
            f"{row['frame_finetuned_s'] / row['frame_agp_s']:.2f} |")
    return "\n".join(lines)


def run_one(scan: Scan, ct: Volume, preset: str, args: argparse.Namespace, slicer: bool) -> dict:
    """Prepare, fine-tune, render and score one scan with one preset; save its picture."""
    tag = f"{scan.name} / {preset}"
    log(f"{tag}: preparing (AGP)")
    started = time.perf_counter()
    agp = prepare(ct, scan.seg, preset, weights=None, spacing_mm=args.spacing, device=args.device)
    prepare_s = time.perf_counter() - started
    start = agp if args.start_weights is None else prepare(
        ct, scan.seg, preset, weights=args.start_weights, spacing_mm=args.spacing,
        device=args.device)
    log(f"{tag}: {len(agp):,} Gaussians in {prepare_s:.1f} s; fine-tuning ({args.budget_s:g} s)")
    last = [time.monotonic()]

    def progress(fraction: float, message: str) -> None:
        if time.monotonic() - last[0] >= 15.0:
            last[0] = time.monotonic()
            log(f"{tag}: fine-tune {fraction:.0%}, {message}")

    started = time.perf_counter()
    result = finetune(start, ct, iterations=args.ft_iterations, budget_s=args.budget_s,
                      size=args.ft_size, heldout_size=args.ft_heldout_size, crop=args.ft_crop,
                      densify=args.ft_densify, spacing_mm=args.spacing, seed=args.ft_seed,
                      progress=progress)
    finetune_s = time.perf_counter() - started
    log(f"{tag}: {result.steps} steps in {finetune_s:.0f} s ({result.stopped}); held-out "
        f"{result.before.line()} -> {result.after.line()}")
    models = {"agp": agp, "finetuned": result.gaussians}
    if start is not agp:
        models["network"] = start
    cameras = heldout_cameras(agp, args.views_eval, max(1, args.views_eval // 2))
    shown = [0, args.views_eval]  # the first orbit view and the first close-up
    scored, images = evaluate(ct, preset, models, cameras, args.sizes, args.device, slicer, tag)
    if FRAME_SIZE not in args.sizes:
        _, extra = evaluate(ct, preset, models, [cameras[v] for v in shown], [FRAME_SIZE],
                            args.device, slicer, f"{tag} (picture)")
        images = {(source, shown[view]): rgb for (source, view), rgb in extra.items()}
    log(f"{tag}: frame times at {FRAME_SIZE} px")
    times = frame_times(models, cameras[:args.views_eval])
    name = f"{scan.name}_{preset}.png"
    picture(images, [(shown[0], "held-out orbit view"), (shown[1], "held-out close-up")],
            args.out / name, f"{tag}, {FRAME_SIZE} px")
    return {"scan": scan.name, "ct": str(scan.ct), "segmentation": scan.seg and str(scan.seg),
            "preset": preset, "start": args.start_weights or "agp", "voxels": list(ct.shape),
            "gaussians_agp": len(agp),
            "gaussians_finetuned": len(result.gaussians), "prepare_s": prepare_s,
            "finetune_s": finetune_s, "steps": result.steps, "stopped": result.stopped,
            "seed": args.ft_seed,
            "kept_start": result.kept_start,
            "finetune_heldout": {"before": result.before.line(), "after": result.after.line()},
            "frame_agp_s": statistics.median(times["agp"]),
            "frame_finetuned_s": statistics.median(times["finetuned"]),
            "frame_all_s": times, "scores": scored, "picture": name}


def save(args: argparse.Namespace, header: list[str], rows: list[dict], footer: str) -> None:
    """quality.md and quality.json in --out, written atomically."""
    write(args.out / "quality.md", "\n\n".join(["\n".join(header), tables(rows), footer]) + "\n")
    write(args.out / "quality.json", json.dumps(
        {"header": header, "footer": footer, "rows": rows,
         "args": {k: str(v) for k, v in vars(args).items()}}, indent=1, default=str) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", nargs="+", default=[s.name for s in SCANS],
                        help=f"names ({', '.join(s.name for s in [*SCANS, SAMPLE])}) or CT paths")
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--budget-s", type=float, default=300.0,
                        help="fine-tuning seconds per scan x preset, targets included (300)")
    parser.add_argument("--sizes", default="256,512", help="image sides to score (256,512)")
    parser.add_argument("--views-eval", type=int, default=4,
                        help="held-out orbit views (4); close-ups: half as many, at least 1")
    defaults = {name: parameter.default
                for name, parameter in inspect.signature(finetune).parameters.items()}
    for name in ["--ft-iterations", "--ft-size", "--ft-heldout-size", "--ft-seed"]:
        default = defaults[name[5:].replace("-", "_")]
        parser.add_argument(name, type=int, default=default, help=f"finetune() setting ({default})")
    parser.add_argument("--ft-crop", type=int, default=None,
                        help="finetune() setting (default: by the Gaussian count)")
    parser.add_argument("--ft-densify", action="store_true",
                        help="finetune(densify=True): split and prune")
    parser.add_argument("--spacing", type=float, default=None,
                        help="prepare on this isotropic grid (mm); references stay the CT's own")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")
    parser.add_argument("--start-weights", default=None,
                        help="fine-tune from this network's Gaussians (shipped or a .safetensors "
                             "path) instead of AGP's; AGP is still scored")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality")
    args = parser.parse_args()
    args.sizes = sorted({int(s) for s in items([args.sizes])})
    if args.start_weights not in (None, "shipped") and not Path(args.start_weights).is_file():
        parser.error(f"--start-weights: no weights file {args.start_weights} (give 'shipped' or a "
                     ".safetensors path; leave it out to start from AGP)")
    if args.budget_s <= 0 or args.views_eval < 1 or min(args.sizes) < 16 or args.ft_iterations < 0:
        parser.error("--budget-s and --views-eval must be positive, --ft-iterations not negative, "
                     "sizes at least 16")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    args.out.mkdir(parents=True, exist_ok=True)
    problem = groundtruth_problem("slicer-cpu")
    header = [f"Machine: {machine()}", f"Load average at start: {load()}",
              f"Fine-tune budget {args.budget_s:g} s per scan x preset; held-out views: "
              f"{args.views_eval} orbit + {max(1, args.views_eval // 2)} close-ups; cells: "
              "median over views, AGP -> "
              + (f"network ({args.start_weights}) -> " if args.start_weights else "")
              + "fine-tuned"
              + (f"; prepared at {args.spacing:g} mm" if args.spacing else "")
              + (f"; fine-tuning seed {args.ft_seed}" if args.ft_seed else "")
              + (f"; slicer-cpu skipped: {problem}" if problem else "")]
    print("\n".join(header), flush=True)
    rows: list[dict] = []
    for scan in map(find_scan, items(args.scans)):
        log(f"{scan.name}: reading {scan.ct}")
        try:
            ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
        except Exception as error:  # noqa: BLE001 - a scan that does not read is left out
            log(f"{scan.name}: skipped, it does not read: {error}")
            continue
        for preset in items(args.presets):
            try:
                rows.append(run_one(scan, ct, preset, args, problem is None))
            except Exception as error:  # noqa: BLE001 - one failure should not end a long run
                log(f"{scan.name} / {preset}: failed: {type(error).__name__}: {error}")
                continue
            save(args, header, rows, "(still running)")
    footer = f"Load average at end: {load()}; total {time.monotonic() - STARTED:.0f} s"
    print("\n" + tables(rows) + "\n\n" + footer)
    save(args, header, rows, footer)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
