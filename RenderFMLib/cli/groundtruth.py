"""`renderfm compare` and `renderfm make-gt`: the ground-truth renderers from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .args import UsageError, angles, image_side, names, output_folder, positive, progress_bar


def _cmd_compare(args: argparse.Namespace) -> None:
    from ..api import DEFAULT_PRESET
    from ..compare import compare, write_comparison

    folder = output_folder(args.output, create=False)  # made once the inputs are checked
    with progress_bar("comparing") as progress:
        result = compare(args.input, args.preset or DEFAULT_PRESET, segmentation=args.seg,
                         views=args.views, size=args.size, renderers=args.renderers,
                         target=args.target, spp=args.spp, progress=progress)
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    for path in write_comparison(result, folder):
        print(f"wrote {path}")


def _cmd_make_gt(args: argparse.Namespace) -> int:
    from ..groundtruth.cache import make_ground_truth

    scans = [Path(scan) for scan in args.scans]
    if args.scans_file:
        listed = Path(args.scans_file).read_text().splitlines()
        scans += [Path(line.strip()) for line in listed if line.strip()
                  and not line.strip().startswith("#")]
    if not scans:
        raise UsageError("give at least one scan (or --scans-file)")
    folder = output_folder(args.output, create=False)  # made once the inputs are checked
    with progress_bar("ground truth") as progress:
        summary = make_ground_truth(scans, args.presets, folder, renderer=args.renderer,
                                    size=args.size, views=args.views,
                                    elevations=args.elevations, spp=args.spp,
                                    threads=args.threads, variant=args.variant,
                                    progress=progress)
    print(f"{summary.rendered} views rendered, {summary.skipped} already there, "
          f"{len(summary.failed)} of {len(scans)} scans failed; images in {folder}")
    for scan, reason in summary.failed:
        print(f"renderfm: failed: {scan}: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


def add_compare(commands: argparse._SubParsersAction) -> None:
    from ..compare import renderer_names

    compare = commands.add_parser(
        "compare", help="RenderFM beside dvr, path-traced and Slicer's native rendering, with "
                        "metrics, over an orbit (montage.png, metrics.md, metrics.json)")
    compare.add_argument("input", help="CT (NIfTI, NRRD, MHA, DICOM folder)")
    compare.add_argument("--seg", help="segmentation for RenderFM (as for render), or 'threshold'")
    compare.add_argument("--preset", help="preset name or file (default: Slicer's CT default)")
    compare.add_argument("--views", type=positive, default=4, help="orbit views (default 4)")
    compare.add_argument("--size", type=image_side, default=256, help="image side in pixels")
    compare.add_argument("--renderers", type=names,
                         help=f"comma-separated, default all: {', '.join(renderer_names())}")
    compare.add_argument("--target", help="the reference every image is scored against "
                                          "(default pathtraced, or dvr without Mitsuba)")
    compare.add_argument("--spp", type=positive, default=16,
                         help="path tracer samples per pixel (default 16)")
    compare.add_argument("-o", "--output", default="renderfm_compare", help="output folder")
    compare.set_defaults(run=_cmd_compare)


def add_make_gt(commands: argparse._SubParsersAction) -> None:
    from ..api import DEFAULT_PRESET
    from ..groundtruth.cache import PATH_TRACER_THREADS, RENDERERS
    from ..groundtruth.mitsuba_loader import VARIANTS

    gt = commands.add_parser(
        "make-gt", help="render ground truth for many scans, presets and views into a "
                        "resumable on-disk cache (training data)")
    gt.add_argument("scans", nargs="*", help="CT files or DICOM folders")
    gt.add_argument("--scans-file", help="a text file with one scan path per line")
    gt.add_argument("--presets", type=names, default=[DEFAULT_PRESET],
                    help=f"comma-separated preset names or files (default {DEFAULT_PRESET})")
    gt.add_argument("--renderer", choices=RENDERERS, default="pathtraced",
                    help="ground-truth renderer (default pathtraced)")
    gt.add_argument("--views", type=positive, default=8, help="azimuths per elevation")
    gt.add_argument("--elevations", type=angles, default=[0.0],
                    help="comma-separated elevations in degrees (default 0; write negative "
                         "ones as --elevations=-30,0,30)")
    gt.add_argument("--size", type=image_side, default=256, help="image side in pixels")
    gt.add_argument("--spp", type=positive, default=64, help="path tracer samples per pixel")
    gt.add_argument("--threads", type=positive, default=PATH_TRACER_THREADS,
                    help=f"path tracer CPU threads (default {PATH_TRACER_THREADS}; its images "
                         "depend on it, so keep it fixed for one data set)")
    gt.add_argument("--variant", choices=VARIANTS,
                    help="Mitsuba variant (default: cuda_ad_rgb with a CUDA GPU, else "
                         "llvm_ad_rgb); fixed per output folder")
    gt.add_argument("-o", "--output", required=True, help="cache folder")
    gt.set_defaults(run=_cmd_make_gt)
