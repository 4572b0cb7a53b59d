"""Preparing 6D Gaussians from scene nodes, in a worker thread for a GUI that must not freeze.

prepare() and start_prepare() read the CT and segmentation nodes in the calling (GUI) thread, as
MRML must be read, then run the preparation here or in a PrepareJob to poll, cancel and collect.

A preparation is AGP (api.prepare) and, when asked, fine-tuning after it (api.finetune against dvr
views of the same CT): AGP then fills the first AGP_SHARE of the progress and fine-tuning the
rest, each message with the time left of its budget. torch releases the GIL while it computes, so
Slicer's GUI thread keeps running and polls the job from a timer; MRML nodes are read in the GUI
thread before the job starts (the scene is not thread-safe), so the worker only sees volumes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import api
from ..errors import RenderFMError
from ..gaussians import SixDGaussians
from ..transfer import Preset
from ..volume import Volume
from .context import SlicerContext
from .dependencies import resolve_device
from .nodes import labels_from_segmentation_node, volume_from_node

AGP_SHARE = 0.1  # of the progress bar when fine-tuning follows AGP


class Cancelled(RenderFMError):
    """The user cancelled a preparation."""


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning after AGP: budget_s, seconds for the whole stage, target views included (None:
    until api.finetune's iterations are done), and api.finetune's other keywords (size,
    heldout_size, iterations, crop, densify, seed)."""

    budget_s: float | None = 300.0
    keywords: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finetuned:
    """A finished fine-tuning: api.finetune's result and how many Gaussians AGP had made."""

    result: api.FinetuneResult
    agp_count: int

    def summary(self) -> str:
        """One line for the status: time, steps, held-out PSNR before -> after, Gaussian counts."""
        result = self.result
        head = (f"fine-tuned in {result.seconds:.0f} s, {result.steps} steps: held-out PSNR "
                f"{result.before.psnr:.1f} -> {result.after.psnr:.1f} dB")
        if result.kept_start:
            return (f"{head}; the held-out loss did not improve, so the AGP Gaussians stay "
                    f"({self.agp_count:,})")
        return f"{head} ({self.agp_count:,} -> {len(result.gaussians):,} Gaussians)"


@dataclass(frozen=True)
class Prepared:
    """What a preparation made: the Gaussians to show and, after fine-tuning, its report."""

    gaussians: SixDGaussians
    finetuned: Finetuned | None = None


@dataclass(frozen=True)
class Preparation:
    """A preparation's inputs, read from the scene in the GUI thread: the CT (HU), its labels (a
    Volume, a SEGMENTERS name or None), the torch device and what to say about it; clock:
    monotonic seconds, for the time left of the fine-tuning's budget."""

    ct: Volume
    labels: Volume | str | None
    device: str
    device_message: str
    clock: Callable[[], float] = time.monotonic

    def __call__(self, preset: str | Preset, options: Mapping[str, Any],
                 finetune: FinetuneSettings | None, cancel: threading.Event,
                 *callbacks: api.Progress | None) -> Prepared:
        """AGP through api.prepare (options: its further keywords), then fine-tuning if asked.
        Each step goes to the callbacks (in this thread); once cancel is set, the next step
        raises Cancelled."""

        def step(fraction: float, message: str) -> None:
            if cancel.is_set():
                raise Cancelled("preparation cancelled")
            for callback in callbacks:
                if callback is not None:
                    callback(fraction, message)

        step(0.0, self.device_message)
        share = 1.0 if finetune is None else AGP_SHARE
        gaussians = api.prepare(self.ct, self.labels, preset, device=self.device,
                                progress=lambda f, m: step(share * f, m), **options)
        finetuned = None
        if finetune is not None:
            finetuned = self._finetune(gaussians, options, finetune, step, cancel.is_set)
            gaussians = finetuned.result.gaussians
        step(1.0, f"{len(gaussians)} Gaussians ready")  # Cancelled if cancel stopped fine-tuning
        return Prepared(gaussians, finetuned)

    def _finetune(self, gaussians: SixDGaussians, options: Mapping[str, Any],
                  settings: FinetuneSettings, step: api.Progress,
                  should_stop: Callable[[], bool]) -> Finetuned:
        """api.finetune on the AGP Gaussians and this CT (read as prepare read it)."""
        started = self.clock()

        def report(fraction: float, message: str) -> None:
            if settings.budget_s is not None:
                left = max(0.0, settings.budget_s - (self.clock() - started))
                message = f"{message}, about {left:.0f} s left"
            step(AGP_SHARE + (1.0 - AGP_SHARE) * fraction, f"fine-tuning: {message}")

        result = api.finetune(gaussians, self.ct, **settings.keywords, budget_s=settings.budget_s,
                              hu_offset=options.get("hu_offset"),
                              spacing_mm=options.get("spacing_mm"), progress=report,
                              should_stop=should_stop)
        return Finetuned(result, len(gaussians))


class PrepareJob:
    """A preparation running in a worker thread; poll done() and progress from the GUI."""

    def __init__(self, work: Callable[[api.Progress, threading.Event], Prepared]) -> None:
        self._cancel = threading.Event()
        self._progress = (0.0, "starting")
        self._result: Prepared | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="RenderFM prepare",
                                        daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[api.Progress, threading.Event], Prepared]) -> None:
        try:
            self._result = work(self._report, self._cancel)
        except BaseException as error:  # handed to the GUI thread by result()
            self._error = error

    def _report(self, fraction: float, message: str) -> None:
        self._progress = (fraction, message)

    @property
    def progress(self) -> tuple[float, str]:
        """(fraction in [0, 1], message) of the latest step."""
        return self._progress

    def done(self) -> bool:
        """Whether the worker has finished (with Gaussians, an error or Cancelled)."""
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Ask the worker to stop at its next step; result() then raises Cancelled."""
        self._cancel.set()

    def result(self, timeout: float | None = None) -> SixDGaussians:
        """The Gaussians (fine-tuned, when asked), waiting up to timeout seconds (None: for
        ever); re-raises the worker's error (Cancelled after cancel()); TimeoutError if it is
        still running."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the preparation is still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None  # the finished worker set a result or an error
        return self._result.gaussians

    @property
    def finetuned(self) -> Finetuned | None:
        """The fine-tuning's report once the job has made its Gaussians (None: AGP alone, or
        not made)."""
        return None if self._result is None else self._result.finetuned


def prepare(
    context: SlicerContext,
    volume_node: Any,
    segmentation: Any = None,
    preset: str | Preset = api.DEFAULT_PRESET,
    *,
    device: str = "auto",
    progress: api.Progress | None = None,
    cancel: threading.Event | None = None,
    finetune: FinetuneSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
    **options: Any,
) -> SixDGaussians:
    """6D Gaussians of volume_node's CT (HU, RAS) through api.prepare, then api.finetune when
    finetune is given (against dvr views of the same CT, FinetuneSettings), in this thread.

    segmentation: None, a vtkMRMLSegmentationNode (segments matched to TotalSegmentator classes
    by name) or "threshold", "auto", "auto-fast"; device: "auto", "cuda" or "cpu"
    (resolve_device); options: further api.prepare keywords (groups, group_colors, spacing_mm,
    hu_offset); clock: monotonic seconds, for the time left of the fine-tuning's budget.
    progress(fraction, message) is called in this thread. Raises Cancelled at the next step once
    cancel is set.
    """
    return read_nodes(context, volume_node, segmentation, device, clock)(
        preset, options, finetune, cancel or threading.Event(), progress).gaussians


def start_prepare(
    context: SlicerContext,
    volume_node: Any,
    segmentation: Any = None,
    preset: str | Preset = api.DEFAULT_PRESET,
    *,
    device: str = "auto",
    progress: api.Progress | None = None,
    finetune: FinetuneSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
    **options: Any,
) -> PrepareJob:
    """prepare(...) in a worker thread, cancelled by job.cancel(); job.finetuned reports the
    fine-tuning. The nodes are read here, in the calling (GUI) thread, as MRML must be: their
    errors raise at once. Only RenderFMLib.api runs in the worker; progress, if given, is called
    there (the widget should rather poll job.progress)."""
    read = read_nodes(context, volume_node, segmentation, device, clock)
    return PrepareJob(lambda report, cancel: read(preset, options, finetune, cancel, report,
                                                  progress))


def read_nodes(context: SlicerContext, volume_node: Any, segmentation: Any, device: str,
               clock: Callable[[], float] = time.monotonic) -> Preparation:
    """What the worker needs, read from the scene nodes now (in the GUI thread)."""
    torch_device, device_message = resolve_device(device)
    if volume_node is None or not volume_node.IsA("vtkMRMLScalarVolumeNode"):
        raise RenderFMError("choose a CT scalar volume as input")
    ct = volume_from_node(volume_node)
    return Preparation(ct, _labels(context, segmentation, ct), torch_device, device_message,
                       clock)


def _labels(context: SlicerContext, segmentation: Any, ct: Volume) -> Volume | str | None:
    """None, a SEGMENTERS name, or the label map of a segmentation node on the CT's grid."""
    if segmentation is None or isinstance(segmentation, str):
        if segmentation is not None and segmentation not in api.SEGMENTERS:
            raise RenderFMError(f"unknown segmentation '{segmentation}'; use a segmentation "
                                f"node or one of {', '.join(api.SEGMENTERS)}")
        return segmentation
    if not (hasattr(segmentation, "IsA") and segmentation.IsA("vtkMRMLSegmentationNode")):
        raise RenderFMError("the segmentation must be a segmentation node or "
                            f"one of {', '.join(api.SEGMENTERS)}")
    return labels_from_segmentation_node(context, segmentation, ct)
