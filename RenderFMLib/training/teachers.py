"""Teachers for distillation: the residuals that per-scan fine-tuning found, which the network
first learns to predict (cheap: no rendering per step), before it trains in image space.

For each training scan and preset of the manifest, on the teacher spacing: AGP, then fine-tuning
(optimize/finetune.py) against `dvr` views of that scan, with positions fixed (so the teachers
say nothing about the offsets channels, which the image-space steps learn alone). The
teacher is residual = tuned - AGP base per block ([N, 49], channels.py) with the blocks' indices
([N, 3] k, j, i on the half-resolution grid). Measured on the sample (CT-Chest-Contrast-Enhanced,
400 steps, held-out views): foreground SSIM 0.558 -> 0.751 with positions fixed, 0.771 moving.

Off by default (distill_steps 0): in the one run made (docs/network/experiments/, 18 teachers,
900 regression steps) the regression loss hardly fell and the held-out scores stayed at AGP's;
what fine-tuning finds for one block depends on that scan's views more than on its neighbourhood.

Each teacher is RUN/teachers/<scan>__<preset>.safetensors with a .json of its scores, written
whole or not at all; a stopped run reuses the ones it made.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..build import build_gaussians, prime_volume
from ..channels import NUM_CHANNELS, SLICES, STORED_FIELDS
from ..errors import RenderFMError
from ..files import write_atomic
from ..frame import Progress, silent
from ..network.model import RenderFMNetwork
from ..network.predict import block_residuals
from ..optimize.evaluate import Scores
from ..optimize.finetune import FinetuneOptions, finetune
from ..optimize.sampling import views_for
from ..transfer import Preset
from ..volume import Volume
from .config import TrainConfig
from .samples import ScanGrids

FOLDER = "teachers"
TEACHER_CROP = 128  # px, each teacher step's window (window_side's for a crop's Gaussians)


@dataclass(frozen=True)
class Teacher:
    """One scan and preset on the teacher spacing: CT (HU, RAS mm), labels, preset, the kept
    blocks' indices [N, 3] and the fine-tuned residuals [N, 49] of those blocks."""

    name: str
    volume: Volume
    labels: Volume | None
    preset: Preset
    index: torch.Tensor
    residual: torch.Tensor


def teacher_jobs(scans: list[ScanGrids]) -> list[tuple[ScanGrids, Preset]]:
    """Every (training scan, preset) pair, in manifest order."""
    return [(scan, preset) for scan in scans for preset in scan.entry.presets]


def teacher_file(run: Path, scan: ScanGrids, preset: Preset) -> Path:
    """RUN/teachers/<scan>__<preset>.safetensors (its facts in the .json beside it)."""
    return run / FOLDER / f"{scan.entry.name}__{preset.name}.safetensors"


def make_teachers(scans: list[ScanGrids], config: TrainConfig, run: Path, *, rank: int = 0,
                  world: int = 1, progress: Progress = silent) -> None:
    """Fine-tune the teachers this process owns (every world-th job from rank) that are not on
    disk yet."""
    jobs = teacher_jobs(scans)
    for number, (scan, preset) in enumerate(jobs):
        path = teacher_file(run, scan, preset)
        if number % world != rank or path.is_file():
            continue
        progress(number / len(jobs), f"teacher {number + 1}/{len(jobs)}: {path.stem}")
        _make_teacher(scan, preset, config, path)


def _make_teacher(scan: ScanGrids, preset: Preset, config: TrainConfig, path: Path) -> None:
    started = time.monotonic()
    volume, labels = scan.grids[config.teacher_spacing_mm]
    partial_blocks = config.network.partial_blocks
    agp = build_gaussians(volume, labels, preset, partial_blocks=partial_blocks)
    train, heldout = views_for(agp, volume, "dvr", size=config.teacher_size, crop=TEACHER_CROP,
                               heldout_size=config.teacher_size, seed=config.seed)
    options = FinetuneOptions(iterations=config.teacher_steps, budget_s=None,
                              seed=config.seed, fixed_positions=True)
    result = finetune(agp, train, heldout, options)
    primed = prime_volume(volume, labels, preset, partial_blocks)
    tuned = result.gaussians.params()
    channels = primed.base.clone()  # the offsets stay AGP's: the positions were fixed
    for field in STORED_FIELDS:
        channels[:, SLICES[field.name]] = tuned[field.name].reshape(len(primed.labels), -1)
    tensors = {"index": primed.index.cpu().contiguous(),
               "residual": (channels - primed.base).cpu().contiguous()}
    about = {"scan": str(scan.entry.ct), "preset": preset.name, **_settings(config),
             "steps": result.steps,
             "seconds": round(time.monotonic() - started, 1), "kept_start": result.kept_start,
             "before": _scores(result.before), "after": _scores(result.after)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path.with_suffix(".json"),
                 lambda partial: partial.write_text(json.dumps(about, indent=1) + "\n",
                                                    encoding="utf-8"))
    write_atomic(path, lambda partial: save_file(tensors, str(partial)))


def _settings(config: TrainConfig) -> dict:
    """The config terms a teacher is made with."""
    return {"spacing_mm": config.teacher_spacing_mm, "teacher_steps": config.teacher_steps,
            "teacher_size": config.teacher_size, "seed": config.seed,
            "partial_blocks": config.network.partial_blocks}


def load_teachers(scans: list[ScanGrids], config: TrainConfig, run: Path) -> list[Teacher]:
    """Every teacher of the manifest's training scans, from RUN/teachers/; RenderFMError when
    one was made with other settings (another run's folder)."""
    teachers = []
    for scan, preset in teacher_jobs(scans):
        path = teacher_file(run, scan, preset)
        about = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if any(about.get(key) != value for key, value in _settings(config).items()):
            raise RenderFMError(f"teacher {path} was made with other settings than this "
                                "config's teacher terms; train into a new folder")
        tensors = load_file(str(path))
        volume, labels = scan.grids[config.teacher_spacing_mm]
        index, residual = tensors["index"], tensors["residual"]
        if residual.shape != (len(index), NUM_CHANNELS):
            raise RenderFMError(f"teacher {path} holds residuals {list(residual.shape)}, not "
                             f"[{len(index)}, {NUM_CHANNELS}]")
        teachers.append(Teacher(path.stem, volume, labels, preset, index, residual))
    return teachers


def channel_scales(teachers: list[Teacher]) -> torch.Tensor:
    """[49] each field's standard deviation over every teacher's residuals (a field's channels
    share it): the regression weighs fields by how much fine-tuning moved them. The offsets get
    an infinite scale, so they are left out: the teachers kept their positions fixed."""
    residual = torch.cat([teacher.residual for teacher in teachers])
    scales = torch.full((NUM_CHANNELS,), math.inf)
    for field in STORED_FIELDS:
        scales[field.start:field.stop] = residual[:, field.start:field.stop].std().clamp_min(1e-3)
    return scales


def distill_loss(network: RenderFMNetwork, teachers: list[Teacher], scales: torch.Tensor,
                 seed: tuple[int, ...], crop_voxels: int, device: torch.device) -> torch.Tensor:
    """The scaled mean squared error between the network's residuals and a teacher's, over the
    teacher's blocks within a box of crop_voxels voxels around a block, all drawn from `seed`."""
    generator = np.random.default_rng(seed)
    teacher = teachers[generator.integers(len(teachers))]
    centre = teacher.index[generator.integers(len(teacher.index))]
    reach = max(crop_voxels // 4, 1)  # blocks on each side
    inside = ((teacher.index - centre).abs() <= reach).all(dim=1)
    volume = Volume(teacher.volume.array.to(device), teacher.volume.ijk_to_ras)
    labels = None if teacher.labels is None else \
        Volume(teacher.labels.array.to(device), teacher.labels.ijk_to_ras)
    predicted = block_residuals(network, volume, labels, teacher.preset,
                                teacher.index[inside].to(device))
    error = (predicted.float() - teacher.residual[inside].to(device)) / scales.to(device)
    return error.square().mean()


def _scores(scores: Scores) -> dict[str, float]:
    return {"psnr": scores.psnr, "ssim": scores.ssim, "ssim_fg": scores.ssim_fg}


def teachers_summary(scans: list[ScanGrids], run: Path) -> dict:
    """How many teachers, the seconds they took (one after another) and their mean held-out
    scores before and after fine-tuning (from their JSON), for the weights' description."""
    facts = [json.loads(teacher_file(run, scan, preset).with_suffix(".json").read_text(
        encoding="utf-8")) for scan, preset in teacher_jobs(scans)]
    means = {when: {score: round(statistics.fmean(fact[when][score] for fact in facts), 4)
                    for score in ("psnr", "ssim", "ssim_fg")} for when in ("before", "after")}
    return {"teachers": len(facts), "seconds": round(sum(fact["seconds"] for fact in facts), 1),
            **means}
