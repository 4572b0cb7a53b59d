"""A training run's settings (`renderfm train --config CONFIG.json`): the network's and the
run's. Every term has a default; unknown terms are refused."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..errors import RenderFMError
from ..network.model import NetworkConfig

Spacing = float | tuple[float, float, float]  # a training grid: isotropic mm, or mm along i, j, k


@dataclass(frozen=True)
class TrainConfig:
    """steps: optimiser steps; batch: samples per step (over all processes); learning_rate:
    Adam's, decayed by a cosine to a tenth; crop_voxels: a sample's side in voxels at most;
    size: target side in pixels; spacings_mm: spacings a sample's CT is drawn at, each a number
    (isotropic) or [i, j, k] mm along the CT's own axes, i = j (thick or thin slices);
    eval_every: steps between held-out scores and checkpoints; eval_size, eval_spacing_mm: of
    the held-out views; seed: every random choice. distill_steps: the first steps regress the
    residuals of per-scan fine-tuned teachers (teachers.py) instead of rendering; teacher_steps,
    teacher_size, teacher_spacing_mm (one of spacings_mm): the teachers' fine-tuning steps,
    view side in pixels and spacing."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    steps: int = 2000
    batch: int = 4
    learning_rate: float = 1e-3
    crop_voxels: int = 48
    size: int = 96
    spacings_mm: tuple[Spacing, ...] = (1.5, 2.0, 3.0)
    eval_every: int = 100
    eval_size: int = 128
    eval_spacing_mm: float = 3.0
    seed: int = 0
    distill_steps: int = 0
    teacher_steps: int = 300
    teacher_size: int = 256
    teacher_spacing_mm: float = 3.0

    def to_dict(self) -> dict:
        return {**asdict(self), "spacings_mm": [list(value) if isinstance(value, tuple) else value
                                                for value in self.spacings_mm]}

    @classmethod
    def from_dict(cls, terms: dict) -> TrainConfig:
        """ValueError naming an unknown or wrong term."""
        unknown = set(terms) - {item.name for item in fields(cls)}
        if unknown:
            raise ValueError(f"unknown terms {', '.join(sorted(unknown))}")
        terms = dict(terms)
        if "network" in terms:
            terms["network"] = NetworkConfig.from_dict(terms["network"])
        if "spacings_mm" in terms:
            terms["spacings_mm"] = tuple(_spacing(value) for value in terms["spacings_mm"])
        config = replace(cls(), **terms)
        config.check()
        return config

    def check(self) -> None:
        positive = {"steps": self.steps, "batch": self.batch, "crop_voxels": self.crop_voxels,
                    "size": self.size, "eval_every": self.eval_every,
                    "eval_size": self.eval_size, "teacher_steps": self.teacher_steps,
                    "teacher_size": self.teacher_size}
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        if self.size < 16 or self.eval_size < 16 or self.crop_voxels < 4:
            raise ValueError("size and eval_size must be at least 16 pixels, crop_voxels 4")
        if not (self.learning_rate > 0 and self.eval_spacing_mm > 0 and self.spacings_mm
                and all(min(spacing_ijk(value)) > 0 for value in self.spacings_mm)):
            raise ValueError("learning_rate and the spacings must be positive")
        if isinstance(self.distill_steps, bool) or not isinstance(self.distill_steps, int) \
                or not 0 <= self.distill_steps <= self.steps:
            raise ValueError(f"distill_steps must be a whole number in [0, steps], not "
                             f"{self.distill_steps!r}")
        if self.distill_steps and self.teacher_spacing_mm not in self.spacings_mm:
            raise ValueError(f"teacher_spacing_mm ({self.teacher_spacing_mm}) must be one of "
                             f"spacings_mm {list(self.spacings_mm)}")


def spacing_ijk(spacing: Spacing) -> tuple[float, float, float]:
    """A training spacing as mm along the CT's i, j and k."""
    return spacing if isinstance(spacing, tuple) else (spacing, spacing, spacing)


def _spacing(value: object) -> Spacing:
    """A spacings_mm entry from JSON: a number, or [i, j, k] with i = j."""
    if isinstance(value, list | tuple):
        if len(value) != 3 or value[0] != value[1]:
            raise ValueError(f"a spacings_mm entry is a number or [i, j, k] mm with i = j (the "
                             f"in-plane swap keeps the anatomy's shape), not {value!r}")
        i, j, k = (float(side) for side in value)
        return (i, j, k)
    if isinstance(value, bool):
        raise ValueError(f"a spacings_mm entry is a number or [i, j, k], not {value!r}")
    return float(value)  # type: ignore[arg-type]


def read_config(path: str | Path | None) -> TrainConfig:
    """The config in JSON file `path` (None: the defaults); RenderFMError naming the problem."""
    if path is None:
        return TrainConfig()
    try:
        terms = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(terms, dict):
            raise ValueError("it must be a JSON object")
        return TrainConfig.from_dict(terms)
    except (OSError, ValueError, TypeError) as error:
        raise RenderFMError(f"training config {path}: {error}") from None
