"""The training loop of `renderfm train`: Adam on the network's weights against dvr images of
random augmented crops (samples.py), data-parallel over processes, resumable. With
config.distill_steps, the first steps instead regress the residuals of per-scan fine-tuned
teachers (teachers.py; made first, and kept in RUN/teachers/), a start the image-space steps
then refine.

Each step takes `batch` samples; sample i of step s is drawn from the seed (seed, s, i) alone,
so a step is the same whatever the number of processes: process r of W takes the samples
i = r, r + W, ..., and the gradients (each sample's loss / batch) are summed over processes
(torch.distributed all-reduce; gloo on CPU, NCCL on GPU; launched by torchrun, which sets
WORLD_SIZE). Process 0 scores the held-out scans every eval_every steps (and at step 0, where
the zero-initialised network is AGP), writes RUN/metrics.csv and the checkpoint; the finished
run writes RUN/weights.safetensors + .json, the file prepare(weights=...) reads.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..build import prime_volume
from ..channels import combine
from ..errors import RenderFMError
from ..files import write_atomic
from ..frame import Progress, silent
from ..network.model import RenderFMNetwork
from ..network.predict import block_residuals
from ..network.weights import save_network
from ..optimize.loss import image_loss
from ..optimize.windows import render_window
from ..priming import gaussian_means
from ..volume import Volume
from .checkpoint import file_sha256, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .heldout import heldout_cases, network_scores, summary
from .manifest import read_manifest
from .samples import Sample, ScanGrids, draw_sample, load_grids
from .teachers import (
    Teacher,
    channel_scales,
    distill_loss,
    load_teachers,
    make_teachers,
    teachers_summary,
)

METRICS = "metrics.csv"
COLUMNS = ("step", "phase", "seconds", "loss", "learning_rate", "heldout_loss", "heldout_psnr",
           "heldout_ssim", "heldout_ssim_fg")
FINAL_LR_SHARE = 0.1


@dataclass(frozen=True)
class TrainResult:
    steps: int           # steps done in all, this run and those before a resume
    seconds: float       # training time in all
    stopped: str         # "steps", "stop_at", "cancelled", "interrupted"
    agp: dict[str, float]
    network: dict[str, float]  # the last held-out scores (nan without held-out scans)


def train(manifest: str | Path, config: TrainConfig, run: str | Path, *, resume: bool = False,
          device: str | torch.device = "cpu", progress: Progress = silent,
          stop_at: int | None = None, should_stop: Callable[[], bool] = lambda: False,
          about: dict | None = None) -> TrainResult:
    """Train a network on the manifest's scans into folder `run` (see the module text).

    stop_at: end after that step with a checkpoint (to be resumed); should_stop(): checked
    between steps; about: facts for the weights' JSON (the command...).
    """
    rank, world = _distributed()
    run = Path(run)
    device = torch.device(device)
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(manifest)
    progress(0.0, "reading the CTs")
    scans = [load_grids(entry, config.spacings_mm) for entry in entries if not entry.heldout]
    torch.manual_seed(config.seed)
    network = RenderFMNetwork(config.network).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    state: dict[str, Any] = {"step": 0, "seconds": 0.0, "config": config.to_dict(),
             "manifest_sha256": file_sha256(manifest)}
    rows: list[dict] = []
    if resume:
        state = _resumed(run, network, optimizer, state)
        rows = _read_rows(run / METRICS, state["step"])
    teachers = _teachers(scans, config, run, rank, world, progress)
    scales = channel_scales(teachers) if teachers else None
    cases = []
    if rank == 0:
        progress(0.0, "rendering held-out targets")
        held = [load_grids(entry, (config.eval_spacing_mm,)) for entry in entries
                if entry.heldout]
        cases = heldout_cases(held, config.eval_spacing_mm, config.eval_size)
    agp = summary([case.agp for case in cases])
    scores = agp
    if rank == 0 and state["step"] == 0 and not rows:
        rows.append(_row(0, "", 0.0, float("nan"), config.learning_rate, agp))
    step, started, stopped = state["step"], time.monotonic() - state["seconds"], "steps"
    try:
        while step < config.steps:
            if stop_at is not None and step >= stop_at:
                stopped = "stop_at"
                break
            if should_stop():
                stopped = "cancelled"
                break
            lr = _learning_rate(config, step)
            loss = _step(network, optimizer, _loss_of(network, scans, teachers, scales, config,
                                                      step, device), config, step, lr, rank, world)
            step += 1
            if rank == 0:
                evaluate = step % config.eval_every == 0 or step == config.steps
                if evaluate and cases:
                    scores = summary(network_scores(network, cases))
                rows.append(_row(step, _phase(config, step - 1), time.monotonic() - started,
                                 loss, lr, scores if evaluate else None))
                if evaluate:
                    _save(run, network, optimizer, state, step, started, rows)
                progress(step / config.steps, f"step {step}, loss {loss:.4f}")
    except KeyboardInterrupt:
        stopped = "interrupted"
    if rank == 0:
        _save(run, network, optimizer, state, step, started, rows)
        if step >= config.steps:
            save_network(network, run / "weights.safetensors",
                         {**(about or {}), "steps": step,
                          "seconds": round(time.monotonic() - started, 1),
                          "train_config": config.to_dict(), "heldout_agp": agp,
                          "heldout_network": scores,
                          **({"distilled_from": teachers_summary(scans, run)} if teachers
                             else {}),
                          "scans": [str(entry.ct) for entry in entries if not entry.heldout],
                          "heldout_scans": [str(entry.ct) for entry in entries
                                            if entry.heldout]})
    if world > 1:
        dist.barrier()  # process 0 has written the files
        dist.destroy_process_group()
    return TrainResult(step, time.monotonic() - started, stopped, agp, scores)


def _distributed() -> tuple[int, int]:
    """(rank, world size): torchrun's process group when WORLD_SIZE > 1, else (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _learning_rate(config: TrainConfig, step: int) -> float:
    """Cosine from learning_rate to FINAL_LR_SHARE of it over the run."""
    share = FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(
        math.pi * step / config.steps))
    return config.learning_rate * share


def _teachers(scans: list[ScanGrids], config: TrainConfig, run: Path, rank: int, world: int,
              progress: Progress) -> list[Teacher]:
    """The distillation teachers (none without distill_steps), made where missing: each process
    makes its share, then all read them all."""
    if not config.distill_steps:
        return []
    make_teachers(scans, config, run, rank=rank, world=world, progress=progress)
    if world > 1:
        dist.barrier()
    return load_teachers(scans, config, run)


def _phase(config: TrainConfig, step: int) -> str:
    """What step `step` (from 0) trains on: "distill" (teachers' residuals) or "image"."""
    return "distill" if step < config.distill_steps else "image"


def _loss_of(network: RenderFMNetwork, scans: list[ScanGrids], teachers: list[Teacher],
             scales: torch.Tensor | None, config: TrainConfig, step: int,
             device: torch.device) -> Callable[[tuple[int, ...]], torch.Tensor | None]:
    """The loss of one sample of this step, by its seed."""
    if _phase(config, step) == "distill":
        assert scales is not None  # there are teachers when there are distill steps
        return lambda seed: distill_loss(network, teachers, scales, seed, config.crop_voxels,
                                         device)
    return lambda seed: sample_loss(network, draw_sample(scans, seed, config.crop_voxels,
                                                         config.size), device)


def _step(network: RenderFMNetwork, optimizer: torch.optim.Optimizer,
          loss_of: Callable[[tuple[int, ...]], torch.Tensor | None], config: TrainConfig,
          step: int, lr: float, rank: int, world: int) -> float:
    """One optimiser step over this process's share of the batch; the batch's mean loss."""
    optimizer.zero_grad(set_to_none=False)
    total = torch.zeros(1, dtype=torch.float64)
    for index in range(rank, config.batch, world):
        loss = loss_of((config.seed, step, index))
        if loss is not None:
            (loss / config.batch).backward()
            total += loss.item() / config.batch
    if world > 1:
        for parameter in network.parameters():
            if parameter.grad is None:  # no sample of this process kept a block
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)
        dist.all_reduce(total)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return float(total)


def sample_loss(network: RenderFMNetwork, sample: Sample,
                device: torch.device) -> torch.Tensor | None:
    """The image loss (optimize/loss.py) of AGP + the network's residuals for one sample,
    rendered by the PyTorch renderer, against its dvr target; None when AGP keeps no block."""
    target_rgb, target_alpha = sample.target()
    volume = Volume(sample.volume.array.to(device), sample.volume.ijk_to_ras)
    labels = None if sample.labels is None else \
        Volume(sample.labels.array.to(device), sample.labels.ijk_to_ras)
    primed = prime_volume(volume, labels, sample.preset, network.config.partial_blocks)
    if len(primed.labels) == 0:
        return None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        residual = block_residuals(network, volume, labels, sample.preset, primed.index)
    params = combine(primed.base, residual.float())
    params["means"] = gaussian_means(volume, primed.index, params.pop("offsets"))
    rgb, alpha = render_window(params, sample.camera, sample.size, (0, 0, sample.size))
    return image_loss(rgb, alpha, target_rgb.to(device), target_alpha.to(device))


def _resumed(run: Path, network: RenderFMNetwork, optimizer: torch.optim.Optimizer,
             fresh: dict) -> dict:
    """The checkpoint's state, after checking it was made with this config and manifest."""
    state = load_checkpoint(run, network, optimizer)
    for key, what in (("config", "training config"), ("manifest_sha256", "manifest")):
        if state.get(key) != fresh[key]:
            raise RenderFMError(f"--resume: the run in {run} was made with another {what}; "
                                "resume with the same one, or train into a new folder")
    return state


def _row(step: int, phase: str, seconds: float, loss: float, lr: float,
         scores: dict[str, float] | None) -> dict:
    held = scores or {}
    values = (step, phase, round(seconds, 2), loss, lr, held.get("loss"), held.get("psnr"),
              held.get("ssim"), held.get("ssim_fg"))
    return {column: ("" if value is None else value) for column, value in zip(COLUMNS, values)}


def _read_rows(path: Path, up_to: int) -> list[dict]:
    """The metrics rows of steps up to `up_to` (a resumed run continues after them)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return [row for row in csv.DictReader(file) if int(row["step"]) <= up_to]


def _save(run: Path, network: RenderFMNetwork, optimizer: torch.optim.Optimizer, state: dict,
          step: int, started: float, rows: list[dict]) -> None:
    """The checkpoint and metrics.csv, each whole or not at all."""
    state.update(step=step, seconds=round(time.monotonic() - started, 2))
    save_checkpoint(run, network, optimizer, state)
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(run / METRICS, lambda partial: partial.write_text(text.getvalue(),
                                                                   encoding="utf-8"))
