"""`renderfm view`: RenderFM beside Slicer's volume rendering in a web browser (RenderFMLib/web,
the `web` extra). The inputs and the port are checked before the server starts."""

from __future__ import annotations

import argparse

from .args import MODEL_SUFFIX, UsageError, is_model, positive

DEFAULT_PORT = 8080
DEFAULT_MAX_PIXELS = 160_000  # per view: about 460 x 350, a drag's draft in < 1 s on 2 cores


def _cmd_view(args: argparse.Namespace) -> None:
    from ..web import require_web

    require_web()  # before any work: the extra is missing
    from ..web.server import check_port, serve

    check_port(args.host, args.port)
    serve(_inputs(args), args.host, args.port, args.max_pixels)


def _inputs(args: argparse.Namespace):
    """The CT, its labels, the preset and the model, read and checked (RenderFMError)."""
    from ..api import DEFAULT_PRESET, load_ct_as_read
    from ..gaussians import SixDGaussians
    from ..loading import load_labels
    from ..transfer import load_preset, preset_names
    from ..web.session import Inputs

    if is_model(args.input):
        raise UsageError("renderfm view takes the CT itself, not a prepared model: give the "
                         "model with --model")
    preset = args.preset or DEFAULT_PRESET
    if preset not in preset_names():
        load_preset(preset)  # PresetError with suggestions for a misspelt name
        raise UsageError(f"--preset: renderfm view offers the bundled presets only "
                         f"(`renderfm presets`), not {preset}")
    model = None
    if args.model is not None:
        if not is_model(args.model):
            raise UsageError(f"--model: a prepared model ({MODEL_SUFFIX}, from renderfm "
                             f"prepare), not {args.model}")
        model = SixDGaussians.load(args.model)
    ct = load_ct_as_read(args.input)  # Slicer draws it as read; prepare() picks its own grid
    labels = args.seg if args.seg in (None, "threshold") else load_labels(args.seg, ct, "cpu")
    return Inputs(ct, labels, preset, model)


def _port(text: str) -> int:
    port = positive(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, not {port}")
    return port


def add_view(commands: argparse._SubParsersAction) -> None:
    view = commands.add_parser(
        "view", help="RenderFM beside Slicer's volume rendering in a web browser (needs the web "
                     "extra)")
    view.add_argument("input", help="CT (NIfTI, NRRD, MHA, DICOM folder)")
    view.add_argument("--seg", help="segmentation (as for render), or 'threshold'")
    view.add_argument("--preset", help="a bundled preset's name (see `renderfm presets`)")
    view.add_argument("--model", help=f"a prepared model ({MODEL_SUFFIX}) to show at once")
    view.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1: this machine only)")
    view.add_argument("--port", type=_port, default=DEFAULT_PORT,
                      help=f"port to listen on (default {DEFAULT_PORT})")
    view.add_argument("--max-pixels", type=positive, default=DEFAULT_MAX_PIXELS,
                      help=f"at most this many pixels per view (default {DEFAULT_MAX_PIXELS:,})")
    view.set_defaults(run=_cmd_view)
