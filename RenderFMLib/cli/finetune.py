"""`renderfm finetune`: prepare a CT's Gaussians (or load a prepared model) and fine-tune them
against target views of that CT (api.finetune), then write the model and a short report."""

from __future__ import annotations

import argparse
import inspect
from typing import TYPE_CHECKING

from .args import (
    INTERRUPTED,
    MODEL_SUFFIX,
    UsageError,
    add_weights,
    hounsfield,
    image_side,
    input_paths,
    is_model,
    millimetres,
    non_negative,
    output_file,
    progress_bar,
    refuse_for_model,
    seconds,
    weights_argument,
)

if TYPE_CHECKING:
    from ..gaussians import SixDGaussians
    from ..volume import Volume

STOPPED = {"iterations": "all iterations done", "budget": "time budget spent",
           "cancelled": "cancelled", "interrupted": "interrupted (Ctrl-C)"}


def _cmd_finetune(args: argparse.Namespace) -> int:
    from ..api import finetune

    out = output_file(args.output, MODEL_SUFFIX, input_paths(args))
    gaussians, ct, reading = _start(args)
    with progress_bar("fine-tuning") as progress:
        result = finetune(gaussians, ct, target=args.target, size=args.size,
                          heldout_size=args.heldout_size,
                          iterations=args.iterations, budget_s=args.budget_s, crop=args.crop,
                          densify=args.densify, seed=args.seed, progress=progress,
                          hu_offset=reading.get("hu_offset"), spacing_mm=reading.get("spacing_mm"))
    tuned = result.gaussians
    tuned.save(out)  # whole or not at all: an older out stays until the new one is complete
    print(f"held-out before: {result.before.line()}")
    print(f"held-out after:  {result.after.line()}")
    print(f"Gaussians: {len(gaussians)} -> {len(tuned)}")
    print(f"{result.steps} steps in {result.seconds:.1f} s, stopped: {STOPPED[result.stopped]}")
    if result.kept_start:
        print("fine-tuning did not improve the held-out views; wrote the starting model")
    print(f"wrote {out} ({len(tuned)} Gaussians)")
    return INTERRUPTED if result.stopped == "interrupted" else 0


def _start(args: argparse.Namespace
           ) -> tuple[SixDGaussians, Volume | str | None, dict[str, float | None]]:
    """(Gaussians, the CT for the dvr target, how api.finetune reads that CT): a prepared model
    with --ct read as --hu-offset and --spacing say, or the input CT read once and prepared."""
    from ..api import (
        DEFAULT_PRESET,
        check_device,
        check_finetune_target,
        load_ct_as_read,
        prepare,
    )
    from ..gaussians import SixDGaussians

    device = check_device(args.device)
    check_finetune_target(args.target)
    if is_model(args.input):
        refuse_for_model({"--seg": args.seg, "--preset": args.preset, "--weights": args.weights})
        if args.ct is None and args.target == "dvr":
            raise UsageError("the dvr target needs the CT this model was prepared from: add "
                             "--ct CT (with the --spacing and --hu-offset used to prepare it)")
        gaussians = SixDGaussians.load(args.input, device=device)
        return gaussians, args.ct, {"hu_offset": args.hu_offset, "spacing_mm": args.spacing}
    if args.ct is not None:
        raise UsageError("--ct: only for a prepared model; INPUT is the CT here")
    with progress_bar("preparing") as progress:
        progress(0.0, "reading the CT")
        ct = load_ct_as_read(args.input, args.hu_offset, device)  # dvr's targets: not resampled
        gaussians = prepare(ct, args.seg, args.preset or DEFAULT_PRESET, spacing_mm=args.spacing,
                            weights=weights_argument(args.weights), device=device,
                            progress=progress)
    return gaussians, ct, {"spacing_mm": args.spacing}


def add_finetune(commands: argparse._SubParsersAction) -> None:
    """The `finetune` command's arguments; the fine-tuning ones default to api.finetune's."""
    from ..api import finetune

    default = {name: parameter.default
               for name, parameter in inspect.signature(finetune).parameters.items()}
    tune = commands.add_parser(
        "finetune", help=f"fine-tune a CT's Gaussians against target views of it, saved as "
                         f"{MODEL_SUFFIX}; reports held-out scores before and after")
    tune.add_argument("input", help=f"CT (prepared first, as `renderfm prepare` does) or a "
                                    f"prepared model ({MODEL_SUFFIX}, with --ct)")
    tune.add_argument("--ct", metavar="CT",
                      help="with a prepared model: the CT it was prepared from (dvr target)")
    tune.add_argument("--seg", metavar="SEG",
                      help="with a CT: segmentation, as for prepare, or 'threshold'")
    tune.add_argument("--preset", metavar="NAME",
                      help="with a CT: preset name or file (default: Slicer's CT default)")
    tune.add_argument("--spacing", type=millimetres, metavar="MM",
                      help="resample the CT to this isotropic spacing in mm first, as when "
                           "preparing")
    tune.add_argument("--hu-offset", type=hounsfield, metavar="HU",
                      help="add this to the CT's stored values, as when preparing")
    add_weights(tune)
    tuning = [("--target", str, "dvr|FOLDER", "what to match: dvr (rendered from the CT, "
               "Slicer's look) or a make-gt folder OUT/<scan>/<preset>/<renderer>-<size>px"),
              ("--iterations", non_negative, "N", "most optimisation steps"),
              ("--budget-s", seconds, "S", "most seconds for the whole run, targets included"),
              ("--size", image_side, "N", "largest side in pixels of the dvr training views "
               "(random views, size/2 to size)"),
              ("--heldout-size", image_side, "N", "side in pixels of the dvr held-out views"),
              ("--seed", int, "N", "random seed of views, windows and splits")]
    for flag, kind, metavar, text in tuning:
        tune.add_argument(flag, type=kind, metavar=metavar, help=f"{text} (default %(default)s)",
                          default=default[flag[2:].replace("-", "_")])
    tune.add_argument("--crop", type=image_side, metavar="N", default=default["crop"],
                      help="side in pixels of the window rendered per step (default: 128 up to "
                           "40,000 Gaussians, growing with the square root of their count up "
                           "to 512)")
    tune.add_argument("--densify", action="store_true",
                      help="split the Gaussians the optimiser pushes hardest and prune faded "
                           "ones (pays off only over thousands of steps, e.g. on a GPU)")
    tune.add_argument("--device", default="cpu", metavar="D", help="torch device (default cpu)")
    tune.add_argument("-o", "--output", required=True, metavar="OUT",
                      help=f"output {MODEL_SUFFIX}")
    tune.set_defaults(run=_cmd_finetune)
