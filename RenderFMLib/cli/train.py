"""`renderfm train`: train the network on a manifest of CTs (training/), resumable, on one
process or several under torchrun; prints the held-out scores of AGP and of the network."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .args import INTERRUPTED, UsageError, progress_bar


def _cmd_train(args: argparse.Namespace) -> int:
    from ..frame import check_device, silent
    from ..training.checkpoint import STATE
    from ..training.config import read_config
    from ..training.manifest import read_manifest
    from ..training.trainer import train

    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise UsageError(f"manifest {manifest} does not exist")
    read_manifest(manifest)  # its mistakes before any work
    config = read_config(args.config)
    run = Path(args.out)
    if run.exists() and not run.is_dir():
        raise UsageError(f"--out {run} is a file, not a folder")
    if (run / STATE).exists() and not args.resume:
        raise UsageError(f"{run} already holds a training run: add --resume to go on with it, "
                         "or give another --out")
    device = check_device(args.device)
    first = int(os.environ.get("RANK", "0")) == 0
    started = time.monotonic()
    about = {"command": "renderfm " + " ".join(args.argv),
             "manifest": str(manifest), "device": str(device)}
    with progress_bar("training") as progress:
        result = train(manifest, config, run, resume=args.resume, device=device,
                       progress=progress if first else silent, about=about)
    if first:
        _report(result, run, time.monotonic() - started)
    return INTERRUPTED if result.stopped == "interrupted" else 0


def _report(result, run: Path, seconds: float) -> None:
    for name, scores in (("AGP", result.agp), ("network", result.network)):
        print(f"held-out {name + ':':9s} PSNR {scores['psnr']:.2f} dB, SSIM "
              f"{scores['ssim']:.3f}, foreground SSIM {scores['ssim_fg']:.3f}")
    print(f"{result.steps} steps, {result.seconds:.0f} s of training ({seconds:.0f} s this run)")
    if result.stopped == "interrupted":
        print(f"interrupted: checkpoint at step {result.steps} in {run}; go on with --resume")
    else:
        print(f"wrote {run / 'weights.safetensors'} and {run / 'metrics.csv'}")


def add_train(commands: argparse._SubParsersAction) -> None:
    """The `train` command's arguments."""
    train = commands.add_parser(
        "train", help="train the network on a manifest of CTs (resumable; torchrun for "
                      "several processes)")
    train.add_argument("manifest", help="JSON manifest of CTs, presets and held-out scans")
    train.add_argument("--config", metavar="CONFIG.json",
                       help="training and network settings (default: TrainConfig's; the shipped "
                            "model's are docs/network/train_config.json)")
    train.add_argument("--out", default="renderfm_run", metavar="RUN_DIR",
                       help="folder for checkpoints, metrics.csv and the weights "
                            "(default %(default)s)")
    train.add_argument("--resume", action="store_true",
                       help="go on from the checkpoint in --out")
    train.add_argument("--device", default="cpu", metavar="D", help="torch device (default cpu)")
    train.set_defaults(run=_cmd_train)
