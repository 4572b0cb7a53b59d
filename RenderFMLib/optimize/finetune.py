"""Fine-tuning one scan's Gaussians against target views (the paper's per-scan "fine-tuning").

Each step renders a window (crop) of a view (sampling.py: random views for dvr targets, a new one
every third step or, for large windows, every step; windows of a fixed set for a make-gt folder)
and takes one Adam step on every field with its own learning rate (6DGS's per-scan trainer, larger
for a run of hundreds of steps, not 30,000): position LR_MEANS x block edge h, decaying
exponentially to MEANS_DECAY of it by the end of the run, every other field decaying to LR_DECAY of
its LR (the end is the iteration count or the time budget, whichever comes first; a smaller step at
the end lets the fit settle: sample, CT-Bone at 1.5 mm, 300 s, fixed views: held-out foreground
SSIM 0.871 with the decay, 0.847 without). Windows larger than WINDOW_SIDE (many Gaussians: fewer,
heavier steps) scale every rate by window_lr_scale (sample, CT-Bone at 1.5 mm, 394 px windows, 200
steps, held-out against dvr at 512 px: 38.71 dB / foreground SSIM 0.914 at the table's rates, 39.26
/ 0.918 at 1.5x, 39.45 / 0.919 at 2x; at 128 px, 2x was worse: 0.867 against 0.879). After each
step: albedo is clamped to [0, 1], and position scales are kept at or above SCALE_FLOOR x the
smallest voxel spacing (nothing in a CT is finer than its voxels; smaller Gaussians leave
see-through holes between training pixels). With densify, every DENSIFY_EVERY steps until
DENSIFY_UNTIL of the run, the SPLIT_FRACTION of Gaussians the optimiser pushes hardest are split
(density.py) while the count stays under max_growth x the starting count, and faded ones are
pruned. It is off by default: over the few hundred steps a 2-core CPU takes in 5 minutes, children
start too late to converge (measured on the sample, CT-Bone, 300 steps: held-out PSNR 34.13 dB with
splitting every 50 steps, 34.50 dB without; 33.89 dB every 100 steps from a lower scale floor; with
the CPU kernels, 300 s: foreground SSIM against Slicer at 512 px 0.807 in 1,292 steps with it,
0.836 in 1,471 without).

The run ends at `iterations`, at `budget_s` seconds (held-out targets included), on
`should_stop()` (the Slicer module's Cancel) or on Ctrl-C (KeyboardInterrupt): all of these
finish the current step and return complete Gaussians. The result is checked on held-out views
(evaluate.py); when fine-tuning did not lower the held-out loss, the starting Gaussians are
returned and the report says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..evaluation.metrics import psnr
from ..frame import Progress, silent
from ..gaussians import SixDGaussians
from .density import choose_splits, densify
from .evaluate import Scores, heldout_scores
from .loss import image_loss
from .sampling import WINDOW_SIDE, CachedViews, FreshViews
from .views import View
from .windows import render_window

LR_MEANS = 6e-3          # x block edge h (mm) per step
LR = {"dir_means": 5e-3, "rgb": 5e-3, "sh": 5e-3, "specular_sh": 5e-3, "opacity_logits": 0.05,
      "log_scales": 1e-2, "corr_logits": 1e-2}
MEANS_DECAY = 0.01
LR_DECAY = 0.1
LR_WINDOW_POWER = 0.45   # every LR x (window side / WINDOW_SIDE) ** this, for larger windows
SCALE_FLOOR = 0.4
DENSIFY_EVERY = 50
DENSIFY_FROM = 50
DENSIFY_UNTIL = 0.7
SPLIT_FRACTION = 0.05    # of the current count, per densification at most
ITERATIONS = 6000        # default cap on steps (3,000 ended small sparse runs in half the budget)


@dataclass(frozen=True)
class FinetuneOptions:
    """iterations: most steps; budget_s: wall-clock seconds for the whole run (None: no limit);
    densify: split and prune; max_growth: cap on the Gaussian count as a multiple of the start;
    seed: splits; fixed_positions: keep every position mean where it is (the network's
    distillation teachers, teachers.py)."""

    iterations: int = ITERATIONS
    budget_s: float | None = 300.0
    densify: bool = False
    max_growth: float = 2.0
    seed: int = 0
    fixed_positions: bool = False

    def __post_init__(self) -> None:
        if self.densify and self.fixed_positions:
            raise ValueError("densify moves children away from their parent: it cannot be "
                             "combined with fixed_positions")


@dataclass
class FinetuneResult:
    """What fine-tuning gave: the Gaussians, held-out scores before and after, the run's facts."""

    gaussians: SixDGaussians
    before: Scores
    after: Scores
    steps: int
    seconds: float
    stopped: str  # "iterations", "budget", "cancelled", "interrupted"
    kept_start: bool = False


def finetune(gaussians: SixDGaussians, train: FreshViews | CachedViews, heldout: list[View],
             options: FinetuneOptions = FinetuneOptions(), *, started: float | None = None,
             progress: Progress = silent,
             should_stop: Callable[[], bool] = lambda: False) -> FinetuneResult:
    """Optimise `gaussians` against windows drawn from `train`; score before and after on
    `heldout`.

    started: time.monotonic() when the run began (what came before counts against budget_s).
    The loop stops early enough to leave time for scoring the result (as long as scoring the
    start took).
    """
    started = time.monotonic() if started is None else started
    scored = time.monotonic()
    before = heldout_scores(gaussians, heldout)
    clock = _Clock(started, options, reserve=time.monotonic() - scored)
    state = _State(gaussians, train, options)
    stopped = "iterations"
    try:
        while state.step < options.iterations:
            if should_stop():
                stopped = "cancelled"
                break
            fraction = clock.fraction(state.step)
            if fraction >= 1.0:
                stopped = "budget"
                break
            state.take_step(fraction)
            progress(fraction, state.status())
    except KeyboardInterrupt:
        stopped = "interrupted"
    if state.step == 0:  # nothing optimised: the start, as it was
        return FinetuneResult(gaussians, before, before, 0, time.monotonic() - started,
                              stopped, True)
    tuned = state.gaussians()
    after = heldout_scores(tuned, heldout)
    kept_start = after.loss >= before.loss
    return FinetuneResult(gaussians if kept_start else tuned, before, after, state.step,
                          time.monotonic() - started, stopped, kept_start)


class _Clock:
    """How far a run is, by steps or by time (the budget less the time reserved for scoring)."""

    def __init__(self, started: float, options: FinetuneOptions, reserve: float) -> None:
        self.started = started
        self.options = options
        self.budget = None if options.budget_s is None else max(options.budget_s - reserve, 0.0)

    def fraction(self, step: int) -> float:
        """The run's progress in [0, 1]: steps or time, whichever is further."""
        iterations = self.options.iterations
        by_steps = step / iterations if iterations else 1.0
        by_time = 0.0
        if self.budget is not None:
            by_time = (time.monotonic() - self.started) / max(self.budget, 1e-9)
        return min(1.0, max(by_steps, by_time))


class _State:
    """The optimiser, its parameters and where they look."""

    def __init__(self, gaussians: SixDGaussians, train: FreshViews | CachedViews,
                 options: FinetuneOptions) -> None:
        self.source = gaussians
        self.options = options
        self.train = train
        self.generator = torch.Generator().manual_seed(options.seed)
        self.params = {name: value.detach().clone().requires_grad_(
                           name != "means" or not options.fixed_positions)
                       for name, value in gaussians.params().items()}
        self.labels = gaussians.labels.clone()
        spacing = _voxel_spacing(gaussians)
        self.block_mm = 2.0 * math.prod(spacing) ** (1.0 / 3.0)
        self.floor_log = math.log(SCALE_FLOOR * min(spacing))
        self.cap = int(options.max_growth * len(gaussians))
        self.lr_scale = window_lr_scale(train.largest_window())
        self.optimizer = torch.optim.Adam(
            [{"params": [value], "lr": 0.0, "name": name}
             for name, value in self.params.items() if value.requires_grad], eps=1e-15,
            fused=True)  # one pass per tensor: 10x torch's default loop on the CPU
        self.gradient_sum = torch.zeros(len(gaussians))
        self.gradient_count = 0
        self.step = 0
        self.losses: list[float] = []
        self.last_psnr = float("nan")

    def take_step(self, fraction: float) -> None:
        self._set_lr(fraction)
        window = self.train.sample()
        rgb, alpha = render_window(self.params, window.camera, window.size, window.box)
        loss = image_loss(rgb, alpha, window.rgb, window.alpha)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.options.densify:
            grad = self.params["means"].grad
            assert grad is not None  # means require grad and the loss depends on them
            self.gradient_sum += grad.detach().norm(dim=-1).cpu()
            self.gradient_count += 1
        self.optimizer.step()
        self._project()
        self.step += 1
        self.losses.append(float(loss.detach()))
        self.last_psnr = psnr(rgb.detach().clamp(0, 1), window.rgb)
        if self._densify_now(fraction):
            self._densify()

    def _set_lr(self, fraction: float) -> None:
        """Every field's learning rate at `fraction` of the run (exponential decays)."""
        for group in self.optimizer.param_groups:
            if group["name"] == "means":
                lr = LR_MEANS * self.block_mm * MEANS_DECAY ** fraction
            else:
                lr = LR[group["name"]] * LR_DECAY ** fraction
            group["lr"] = self.lr_scale * lr

    def _project(self) -> None:
        """Keep albedo in [0, 1] and position scales at or above the floor."""
        with torch.no_grad():
            self.params["rgb"].clamp_(0.0, 1.0)
            self.params["log_scales"][:, :3].clamp_(min=self.floor_log)

    def _densify_now(self, fraction: float) -> bool:
        return (self.options.densify and self.step >= DENSIFY_FROM
                and self.step % DENSIFY_EVERY == 0 and fraction < DENSIFY_UNTIL)

    def _densify(self) -> None:
        mean_gradient = self.gradient_sum / max(self.gradient_count, 1)
        room = min(self.cap - len(self.labels), int(SPLIT_FRACTION * len(self.labels)))
        split = choose_splits(mean_gradient, self.params["log_scales"].detach(),
                              math.exp(self.floor_log), room)
        self.params, self.labels = densify(self.params, self.labels, self.optimizer, split,
                                           self.generator)
        self.gradient_sum = torch.zeros(len(self.labels))
        self.gradient_count = 0

    def status(self) -> str:
        recent = self.losses[-20:]
        return (f"step {self.step}, loss {sum(recent) / len(recent):.4f}, "
                f"PSNR {self.last_psnr:.1f} dB, {len(self.labels)} Gaussians")

    def gaussians(self) -> SixDGaussians:
        """The current parameters as complete, detached SixDGaussians."""
        params = {name: value.detach().clone() for name, value in self.params.items()}
        params["dir_means"] = torch.nn.functional.normalize(params["dir_means"], dim=-1)
        source = self.source
        return SixDGaussians(params, self.labels.clone(), source.ijk_to_ras, source.volume_shape,
                             source.preset)


def window_lr_scale(side: int) -> float:
    """The factor on every learning rate for windows of `side` px: 1 up to WINDOW_SIDE, then
    (side / WINDOW_SIDE) ** LR_WINDOW_POWER. Larger windows come with many Gaussians and fewer
    steps in a budget, each of which must move further."""
    return max(1.0, side / WINDOW_SIDE) ** LR_WINDOW_POWER


def _voxel_spacing(gaussians: SixDGaussians) -> tuple[float, float, float]:
    """Voxel spacing (mm) along i, j, k of the CT the Gaussians came from."""
    matrix = torch.tensor(gaussians.ijk_to_ras[:3, :3])
    i, j, k = torch.linalg.vector_norm(matrix, dim=0).tolist()
    return i, j, k
