"""The `renderfm` command: demo, render, prepare, export-ply, presets, compare, make-gt.

Every command goes through the high-level API (api.py). A user mistake prints one line,
"renderfm: error: ...", and exits with status 2; warnings print as "renderfm: warning: ...".
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import RenderFMError

MODEL_SUFFIX = ".safetensors"


class UsageError(RenderFMError):
    """A bad command line argument (wrong output type, missing folder...)."""


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[float, str], None]]:
    """A tqdm bar on stderr driven by api progress callbacks (fraction, message); it is gone
    when the block ends, so messages printed after it start on their own line."""
    from tqdm import tqdm

    bar = tqdm(total=100, leave=False, file=sys.stderr,
               bar_format="{desc:<48} {percentage:3.0f}%|{bar}|")

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_description_str(f"{description}: {message}")

    try:
        yield update
    finally:
        bar.close()


def _output(path: str, suffix: str) -> Path:
    """Checked output path: the right suffix, an existing folder."""
    out = Path(path)
    if out.suffix.lower() != suffix:
        raise UsageError(f"output {out} must end in {suffix}")
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"output {out} is a folder")
    return out


def _load_or_prepare(args: argparse.Namespace):
    """Gaussians from a saved model (.safetensors) or prepared from a CT path."""
    from .api import DEFAULT_PRESET, check_device, prepare
    from .gaussians import SixDGaussians

    if Path(args.input).suffix.lower() == MODEL_SUFFIX:
        ct_only = {"--seg": args.seg, "--preset": args.preset, "--spacing": args.spacing,
                   "--hu-offset": args.hu_offset, "--auto-seg": args.auto_seg or None,
                   "--groups": args.groups, "--group-colors": args.group_colors or None}
        given = [flag for flag, value in ct_only.items() if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only for a CT, not for a prepared model")
        return SixDGaussians.load(args.input, device=check_device(args.device))
    with _progress_bar("preparing") as progress:
        return prepare(args.input, _segmentation(args), args.preset or DEFAULT_PRESET,
                       groups=args.groups, group_colors=args.group_colors,
                       spacing_mm=args.spacing, hu_offset=args.hu_offset, device=args.device,
                       progress=progress)


def _segmentation(args: argparse.Namespace) -> str | None:
    """What prepare() gets as segmentation: the --seg value, or TotalSegmentator's model."""
    if args.fast and not args.auto_seg:
        raise UsageError("--fast goes with --auto-seg")
    if args.auto_seg:
        if args.seg is not None:
            raise UsageError("give either --seg or --auto-seg, not both")
        return "auto-fast" if args.fast else "auto"
    return args.seg


def _camera_file(args: argparse.Namespace):
    """The --camera file's Camera, or None for an orbit view; read before any heavy work."""
    from .camera import read_camera_json

    if args.camera is None:
        return None
    if args.azimuth is not None or args.elevation is not None:
        raise UsageError("give either --camera or --azimuth/--elevation, not both")
    return read_camera_json(args.camera)


def _camera(args: argparse.Namespace, camera, gaussians):
    """camera (from _camera_file) or the orbit view of --azimuth/--elevation around the CT."""
    from .api import default_camera

    return camera or default_camera(gaussians, args.azimuth or 0.0, args.elevation or 0.0)


def _cmd_render(args: argparse.Namespace) -> None:
    from .api import render

    out = _output(args.output, ".png")
    camera = _camera_file(args)
    _check_backend(args.backend)
    gaussians = _load_or_prepare(args)
    render(gaussians, _camera(args, camera, gaussians), args.size, background=args.background,
           hidden_groups=args.hide, backend=args.backend).save_png(out)
    print(f"wrote {out} ({args.size}x{args.size}, {len(gaussians)} Gaussians)")


def _check_backend(backend: str) -> None:
    """--backend cupy where the CUDA kernels cannot run: say why before any work."""
    from .render.cuda.loader import available

    if backend == "cupy" and (reason := available()) is not None:
        raise UsageError(f"--backend cupy: {reason}")


def _cmd_prepare(args: argparse.Namespace) -> None:
    out = _output(args.output, MODEL_SUFFIX)
    gaussians = _load_or_prepare(args)
    gaussians.save(out)
    print(f"wrote {out} ({len(gaussians)} Gaussians)")


def _cmd_export_ply(args: argparse.Namespace) -> None:
    from .api import shown
    from .ply import export_ply

    out = _output(args.output, ".ply")
    camera = _camera_file(args)
    gaussians = _load_or_prepare(args)
    count = export_ply(shown(gaussians, args.hide), _camera(args, camera, gaussians), out)
    print(f"wrote {out} ({count} Gaussians sliced at the camera position)")


def _cmd_presets(args: argparse.Namespace) -> None:
    from .api import DEFAULT_PRESET
    from .transfer import bundled_presets

    for name, preset in bundled_presets().items():
        low, high = preset.scalar_opacity[0][0], preset.scalar_opacity[-1][0]
        marker = " (default)" if name == DEFAULT_PRESET else ""
        print(f"{name:28s} opacity points {len(preset.scalar_opacity):2d}, "
              f"HU {low:g}..{high:g}{marker}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    folder = _output_folder(args.output)
    with _progress_bar("demo") as progress:
        paths = run_demo(folder, args.size, progress)
    for path in paths:
        print(f"wrote {path}")


def _output_folder(path: str) -> Path:
    """A folder for outputs: created if missing; a file there is a UsageError."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"output {folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _cmd_compare(args: argparse.Namespace) -> None:
    from .api import DEFAULT_PRESET
    from .compare import compare, write_comparison

    folder = _output_folder(args.output)
    with _progress_bar("comparing") as progress:
        result = compare(args.input, args.preset or DEFAULT_PRESET, segmentation=args.seg,
                         views=args.views, size=args.size, renderers=args.renderers,
                         target=args.target, spp=args.spp, progress=progress)
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    for path in write_comparison(result, folder):
        print(f"wrote {path}")


def _cmd_make_gt(args: argparse.Namespace) -> int:
    from .groundtruth.cache import make_ground_truth

    scans = [Path(scan) for scan in args.scans]
    if args.scans_file:
        listed = Path(args.scans_file).read_text().splitlines()
        scans += [Path(line.strip()) for line in listed if line.strip()
                  and not line.strip().startswith("#")]
    if not scans:
        raise UsageError("give at least one scan (or --scans-file)")
    folder = _output_folder(args.output)
    with _progress_bar("ground truth") as progress:
        summary = make_ground_truth(scans, args.presets, folder, renderer=args.renderer,
                                    size=args.size, views=args.views,
                                    elevations=args.elevations, spp=args.spp,
                                    threads=args.threads, progress=progress)
    print(f"{summary.rendered} views rendered, {summary.skipped} already there, "
          f"{len(summary.failed)} of {len(scans)} scans failed; images in {folder}")
    for scan, reason in summary.failed:
        print(f"renderfm: failed: {scan}: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="CT (NIfTI, NRRD, MHA, DICOM folder) or a prepared "
                                      f"model ({MODEL_SUFFIX})")
    parser.add_argument("--seg", help="segmentation: a label map in TotalSegmentator's numbering, "
                                      "a folder of per-class masks, a Slicer .seg.nrrd or a "
                                      "binary mask (any overlapping grid); or 'threshold' for "
                                      "an HU-threshold segmentation")
    parser.add_argument("--auto-seg", action="store_true",
                        help="segment with TotalSegmentator (needs its package and weights)")
    parser.add_argument("--fast", action="store_true",
                        help="with --auto-seg: TotalSegmentator's fast 3 mm model")
    parser.add_argument("--groups", type=_names,
                        help="keep only these anatomical groups, comma-separated: "
                             "skeleton, organs, heart_and_vessels, muscles, lungs, "
                             "nervous_system, other")
    parser.add_argument("--group-colors", action="store_true",
                        help="colour each group with its look (ivory bone, red vessels...)")
    parser.add_argument("--device", default="cpu",
                        help="torch device for preparation and TotalSegmentator (default cpu)")
    parser.add_argument("--preset", help="preset name (see `renderfm presets`) or preset file")
    parser.add_argument("--spacing", type=float, help="resample the CT to this isotropic "
                                                      "spacing in mm first (the paper uses 1.5)")
    parser.add_argument("--hu-offset", type=float,
                        help="add this to stored values, e.g. -1024 for CT stored without rescale")


def _add_view(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--azimuth", type=float, help="degrees around the patient: 0 anterior, "
                                                      "90 left, 180 posterior, 270 right")
    parser.add_argument("--elevation", type=float, help="degrees above the axial plane")
    parser.add_argument("--camera", help="CAMERA.json with position, focal_point, view_up (RAS mm) "
                                         "and view_angle (degrees), as Slicer's camera gives them")
    parser.add_argument("--hide", type=_names, default=[],
                        help="leave out these anatomical groups, comma-separated")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _background(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"background must be R,G,B in 0..1, not {text!r}")
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"background must be R,G,B in 0..1, not {text!r}")
    return values


def _size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be a whole number of pixels, not {text!r}")
    if not 16 <= size <= 8192:
        raise argparse.ArgumentTypeError(f"size must be 16..8192 pixels, not {size}")
    return size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="renderfm",
        description="Render CT scans with 6D Gaussians (RenderFM). Coordinates are RAS mm.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="render the bundled sample CT (PNG, orbit strip, GIF)")
    demo.add_argument("-o", "--output", default="renderfm_demo", help="output folder")
    demo.add_argument("--size", type=_size, default=512, help="main image side in pixels")
    demo.set_defaults(run=_cmd_demo)

    render = commands.add_parser("render", help="render a CT or a prepared model to PNG")
    _add_source(render)
    _add_view(render)
    render.add_argument("--size", type=_size, default=512, help="image side in pixels")
    render.add_argument("--background", type=_background, default=(0.0, 0.0, 0.0),
                        help="R,G,B in 0..1 (default black)")
    render.add_argument("--backend", choices=["auto", "torch", "cupy"], default="auto",
                        help="renderer: the CUDA kernels (cupy; needs CuPy and --device cuda), "
                             "the PyTorch reference (torch), or cupy where it can run (auto)")
    render.add_argument("-o", "--output", required=True, help="output .png")
    render.set_defaults(run=_cmd_render)

    prep = commands.add_parser("prepare", help=f"turn a CT into Gaussians, saved as {MODEL_SUFFIX}")
    _add_source(prep)
    prep.add_argument("-o", "--output", required=True, help=f"output {MODEL_SUFFIX}")
    prep.set_defaults(run=_cmd_prepare)

    ply = commands.add_parser("export-ply", help="write the Gaussians sliced at a camera as a "
                                                 "3DGS .ply for other splat viewers")
    _add_source(ply)
    _add_view(ply)
    ply.add_argument("-o", "--output", required=True, help="output .ply")
    ply.set_defaults(run=_cmd_export_ply)

    presets = commands.add_parser("presets", help="list the bundled transfer-function presets")
    presets.set_defaults(run=_cmd_presets)
    _add_compare(commands)
    _add_make_gt(commands)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, not {value}")
    return value


def _angles(text: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected degrees like 0,30,-30, not {text!r}")


def _add_compare(commands) -> None:
    from .compare import renderer_names

    compare = commands.add_parser(
        "compare", help="RenderFM beside dvr, path-traced and Slicer's native rendering, with "
                        "metrics, over an orbit (montage.png, metrics.md, metrics.json)")
    compare.add_argument("input", help="CT (NIfTI, NRRD, MHA, DICOM folder)")
    compare.add_argument("--seg", help="segmentation for RenderFM (as for render), or 'threshold'")
    compare.add_argument("--preset", help="preset name or file (default: Slicer's CT default)")
    compare.add_argument("--views", type=_positive, default=4, help="orbit views (default 4)")
    compare.add_argument("--size", type=_size, default=256, help="image side in pixels")
    compare.add_argument("--renderers", type=_names,
                         help=f"comma-separated, default all: {', '.join(renderer_names())}")
    compare.add_argument("--target", help="the reference every image is scored against "
                                          "(default pathtraced, or dvr without Mitsuba)")
    compare.add_argument("--spp", type=_positive, default=16,
                         help="path tracer samples per pixel (default 16)")
    compare.add_argument("-o", "--output", default="renderfm_compare", help="output folder")
    compare.set_defaults(run=_cmd_compare)


def _add_make_gt(commands) -> None:
    from .groundtruth.cache import PATH_TRACER_THREADS

    gt = commands.add_parser(
        "make-gt", help="render ground truth for many scans, presets and views into a "
                        "resumable on-disk cache (training data)")
    gt.add_argument("scans", nargs="*", help="CT files or DICOM folders")
    gt.add_argument("--scans-file", help="a text file with one scan path per line")
    gt.add_argument("--presets", type=_names, default=["CT-Chest-Contrast-Enhanced"],
                    help="comma-separated preset names or files")
    gt.add_argument("--renderer", choices=["dvr", "pathtraced"], default="pathtraced",
                    help="ground-truth renderer (default pathtraced)")
    gt.add_argument("--views", type=_positive, default=8, help="azimuths per elevation")
    gt.add_argument("--elevations", type=_angles, default=[0.0],
                    help="comma-separated elevations in degrees (default 0)")
    gt.add_argument("--size", type=_size, default=256, help="image side in pixels")
    gt.add_argument("--spp", type=_positive, default=64, help="path tracer samples per pixel")
    gt.add_argument("--threads", type=_positive, default=PATH_TRACER_THREADS,
                    help=f"path tracer CPU threads (default {PATH_TRACER_THREADS}; its images "
                         "depend on it, so keep it fixed for one data set)")
    gt.add_argument("-o", "--output", required=True, help="cache folder")
    gt.set_defaults(run=_cmd_make_gt)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from tqdm import tqdm

    tqdm.write(f"renderfm: warning: {message}", file=sys.stderr)  # above any progress bar


def main(argv: list[str] | None = None) -> int:
    """Entry point of `renderfm`; returns the exit status."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        status = args.run(args)
    except RenderFMError as error:
        print(f"renderfm: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the file system refused: an output that is a folder, no space...
        where = f"{error.filename}: " if error.filename else ""
        print(f"renderfm: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("renderfm: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
