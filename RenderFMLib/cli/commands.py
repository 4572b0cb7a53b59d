"""The `renderfm` command: demo, render, prepare, export-ply, presets, compare, make-gt, finetune,
train, view.

Every command goes through the high-level API (api.py). A user mistake prints one line,
"renderfm: error: ...", and exits with status 2; warnings print as "renderfm: warning: ...".
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import RenderFMError
from .args import (
    CROP_FORMS,
    MODEL_SUFFIX,
    UsageError,
    add_weights,
    background_rgb,
    check_inputs,
    crop_option,
    degrees,
    hounsfield,
    image_side,
    input_paths,
    interrupted,
    is_model,
    millimetres,
    names,
    output_file,
    output_folder,
    progress_bar,
    refuse_for_model,
    weights_argument,
)
from .finetune import add_finetune
from .groundtruth import add_compare, add_make_gt
from .train import add_train
from .view import add_view


def _load_or_prepare(args: argparse.Namespace):
    """Gaussians from a saved model (.safetensors) or prepared from a CT path."""
    from ..api import DEFAULT_PRESET, check_device, prepare
    from ..gaussians import SixDGaussians

    if is_model(args.input):
        refuse_for_model({"--seg": args.seg, "--preset": args.preset, "--spacing": args.spacing,
                          "--hu-offset": args.hu_offset, "--auto-seg": args.auto_seg or None,
                          "--groups": args.groups, "--group-colors": args.group_colors or None,
                          "--weights": args.weights})
        return SixDGaussians.load(args.input, device=check_device(args.device))
    with progress_bar("preparing") as progress:
        return prepare(args.input, _segmentation(args), args.preset or DEFAULT_PRESET,
                       groups=args.groups, group_colors=args.group_colors,
                       spacing_mm=args.spacing, hu_offset=args.hu_offset,
                       weights=weights_argument(args.weights), device=args.device,
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
    from ..camera import read_camera_json

    if args.camera is None:
        return None
    if args.azimuth is not None or args.elevation is not None:
        raise UsageError("give either --camera or --azimuth/--elevation, not both")
    return read_camera_json(args.camera)


def _camera(args: argparse.Namespace, camera, gaussians):
    """camera (from _camera_file) or the orbit view of --azimuth/--elevation around the CT."""
    from ..api import default_camera

    return camera or default_camera(gaussians, args.azimuth or 0.0, args.elevation or 0.0)


def _check_hide(args: argparse.Namespace) -> None:
    """--hide, before any work: known groups, and a segmentation that could hold them."""
    from ..segmentation.classes import labels_in_groups

    if not args.hide:
        return
    labels_in_groups(args.hide)  # SegmentationError naming an unknown group
    if not is_model(args.input) and args.seg is None and not args.auto_seg:
        raise UsageError("--hide needs a segmentation to find the groups in: add --seg "
                         "(a label map, or 'threshold') or --auto-seg")


def _hidable(args: argparse.Namespace, gaussians) -> list[str]:
    """args.hide, once the Gaussians are there: a model without labels has nothing to hide."""
    if args.hide and not bool((gaussians.labels > 0).any()):
        raise UsageError(f"--hide: {args.input} holds no segmentation labels (prepared without "
                         "--seg), so it has no groups to hide")
    return args.hide


def _cmd_render(args: argparse.Namespace) -> None:
    from ..api import render

    out = output_file(args.output, ".png", input_paths(args))
    camera = _camera_file(args)
    crop = crop_option(args.crop)
    _check_backend(args)
    _check_hide(args)
    gaussians = _load_or_prepare(args)
    render(gaussians, _camera(args, camera, gaussians), args.size, background=args.background,
           hidden_groups=_hidable(args, gaussians), crop=crop,
           backend=args.backend).save_png(out)
    print(f"wrote {out} ({args.size}x{args.size}, {len(gaussians)} Gaussians"
          f"{', cropped' if crop is not None else ''})")


def _check_backend(args: argparse.Namespace) -> None:
    """--backend cuda or cpu where those kernels cannot run: say why before any work."""
    from ..render.cpu import available as cpu_problem
    from ..render.cuda.loader import available as cuda_problem

    if args.backend == "cuda":
        if (reason := cuda_problem()) is not None:
            raise UsageError(f"--backend cuda: {reason}")
        if not str(args.device).startswith("cuda"):
            raise UsageError("--backend cuda needs the Gaussians on the GPU: add --device cuda")
    if args.backend == "cpu":
        if (reason := cpu_problem()) is not None:
            raise UsageError(f"--backend cpu: {reason}")
        if str(args.device) != "cpu":
            raise UsageError("--backend cpu renders Gaussians on the CPU: leave out --device")


def _cmd_prepare(args: argparse.Namespace) -> None:
    out = output_file(args.output, MODEL_SUFFIX, input_paths(args))
    gaussians = _load_or_prepare(args)
    gaussians.save(out)
    print(f"wrote {out} ({len(gaussians)} Gaussians)")


def _cmd_export_ply(args: argparse.Namespace) -> None:
    from ..api import shown
    from ..ply import export_ply

    out = output_file(args.output, ".ply", input_paths(args))
    camera = _camera_file(args)
    crop = crop_option(args.crop)
    _check_hide(args)
    gaussians = _load_or_prepare(args)
    count = export_ply(shown(gaussians, _hidable(args, gaussians)),
                       _camera(args, camera, gaussians), out, crop)
    print(f"wrote {out} ({count} Gaussians sliced at the camera position)")


def _cmd_presets(args: argparse.Namespace) -> None:
    from ..api import DEFAULT_PRESET
    from ..transfer import bundled_presets

    for name, preset in bundled_presets().items():
        low, high = preset.scalar_opacity[0][0], preset.scalar_opacity[-1][0]
        marker = " (default)" if name == DEFAULT_PRESET else ""
        print(f"{name:28s} opacity points {len(preset.scalar_opacity):2d}, "
              f"HU {low:g}..{high:g}{marker}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    folder = output_folder(args.output)
    with progress_bar("demo") as progress:
        paths = run_demo(folder, args.size, progress)
    for path in paths:
        print(f"wrote {path}")


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
    parser.add_argument("--groups", type=names,
                        help="keep only these anatomical groups, comma-separated: "
                             "skeleton, organs, heart_and_vessels, muscles, lungs, "
                             "nervous_system, other")
    parser.add_argument("--group-colors", action="store_true",
                        help="colour each group with its look (ivory bone, red vessels...)")
    parser.add_argument("--device", default="cpu",
                        help="torch device for preparation and TotalSegmentator (default cpu)")
    parser.add_argument("--preset", help="preset name (see `renderfm presets`) or preset file")
    parser.add_argument("--spacing", type=millimetres,
                        help="resample the CT to this isotropic spacing in mm first (the paper "
                             "uses 1.5; default: the CT's own grid, isotropic for thick slices, "
                             "2 mm for voxels over 3 mm)")
    parser.add_argument("--hu-offset", type=hounsfield,
                        help="add this to stored values, e.g. -1024 for CT stored without rescale")
    add_weights(parser)


def _add_view(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--azimuth", type=degrees, help="degrees around the patient: 0 anterior, "
                                                        "90 left, 180 posterior, 270 right")
    parser.add_argument("--elevation", type=degrees, help="degrees above the axial plane")
    parser.add_argument("--camera", help="CAMERA.json with position, focal_point, view_up (RAS mm) "
                                         "and view_angle (degrees), as Slicer's camera gives them")
    parser.add_argument("--hide", type=names, default=[],
                        help="leave out these anatomical groups, comma-separated")
    parser.add_argument("--crop", metavar="BOX",
                        help=f"keep only what lies inside a box: {CROP_FORMS}, rotation "
                             "included; cut faces are clipped as Slicer's ROI crops. Bounds "
                             "that start with a minus go after '=': --crop=-100,100,...")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="renderfm",
        description="Render CT scans with 6D Gaussians (RenderFM). Coordinates are RAS mm.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="render the bundled sample CT (PNG, orbit strip, GIF)")
    demo.add_argument("-o", "--output", default="renderfm_demo", help="output folder")
    demo.add_argument("--size", type=image_side, default=512, help="main image side in pixels")
    demo.set_defaults(run=_cmd_demo)

    render = commands.add_parser("render", help="render a CT or a prepared model to PNG")
    _add_source(render)
    _add_view(render)
    render.add_argument("--size", type=image_side, default=512, help="image side in pixels")
    render.add_argument("--background", type=background_rgb, default=(0.0, 0.0, 0.0),
                        help="R,G,B in 0..1 (default black)")
    render.add_argument("--backend", choices=["auto", "torch", "cpu", "cuda"], default="auto",
                        help="renderer: the CUDA kernels (cuda; needs CuPy and --device cuda), "
                             "the CPU kernels (cpu; built once with the machine's C++ compiler), "
                             "the PyTorch reference (torch), or the kernels for --device where "
                             "they can run (auto)")
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
    add_compare(commands)
    add_make_gt(commands)
    add_finetune(commands)
    add_train(commands)
    add_view(commands)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from tqdm import tqdm

    tqdm.write(f"renderfm: warning: {message}", file=sys.stderr)  # above any progress bar


def main(argv: list[str] | None = None) -> int:
    """Run `renderfm ARGS`; returns the exit status: 2 after a user mistake (one line), 130
    after Ctrl-C, even during start-up (the parser imports torch for finetune's defaults)."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        warnings.showwarning = _show_warning
        check_inputs(input_paths(args))  # no command reads a FIFO and waits for ever
        return args.run(args) or 0
    except RenderFMError as error:
        print(f"renderfm: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the file system refused: an output that is a folder, no space...
        where = f"{error.filename}: " if error.filename else ""
        print(f"renderfm: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()

