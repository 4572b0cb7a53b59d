"""RenderFM in Slicer's 3D views, without Qt: testable on a headless scene.

RenderFMOverlay shows 6D Gaussians in 3D views through an ImageLayer that a CameraFollower keeps
in step with the view's camera node, hides anatomical groups, crops to a box (set_crop: drafts
while the box moves, as while the camera moves; no new preparation), and captures a view with or
without RenderFM for the side-by-side measurement (side_by_side.py). Preparing the Gaussians from
scene nodes is jobs.py's. The widget calls tick() from a qt.QTimer; render errors during a drag
never leave tick(): they land in last_error and the log.
With background=True the renders that follow the camera run in a worker thread and tick() only
shows finished frames (milliseconds), so a slow CPU render never freezes the GUI while dragging.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import api
from ..camera import Camera
from ..crop import CropBox
from ..errors import RenderFMError
from ..gaussians import SixDGaussians
from .context import SlicerContext
from .follow import CameraFollower
from .layer import ImageLayer
from .view import read_pixels

logger = logging.getLogger(__name__)


@dataclass
class ViewTarget:
    """A 3D view to draw into: its vtkRenderWindow, vtkMRMLViewNode and vtkMRMLCameraNode.

    request_render: how to redraw the view (in Slicer the view widget's scheduleRender or
    forceRender); default render_window.Render().
    """

    render_window: Any
    view_node: Any
    camera_node: Any
    request_render: Callable[[], None] | None = None

    @classmethod
    def from_offscreen(cls, view: Any) -> ViewTarget:
        """The target of a headless OffscreenThreeDView."""
        return cls(view.render_window, view.view_node, view.camera_node, view.render)

    def render(self) -> None:
        """Redraw the view now."""
        (self.request_render or self.render_window.Render)()


@dataclass
class _Shown:
    """RenderFM drawn in one view: what, where and how."""

    target: ViewTarget
    gaussians: SixDGaussians
    layer: ImageLayer
    draft_scale: float
    follower: CameraFollower = field(init=False)  # show() sets it: its callback renders this
    size: tuple[int, int] = (0, 0)  # the view's (width, height) when last rendered, pixels
    pending: Future | None = None  # a background render not shown yet


def straight_rgba(frame: api.Frame) -> np.ndarray:
    """[H, W, 4] float32 straight-alpha RGBA from a frame rendered on black (premultiplied rgb)."""
    alpha = frame.alpha.detach().clamp(0.0, 1.0)
    rgb = frame.rgb.detach() / alpha.clamp_min(1e-6)[..., None]
    rgba = torch.cat([rgb.clamp(0.0, 1.0) * (alpha > 0)[..., None], alpha[..., None]], dim=-1)
    return rgba.to(torch.float32).cpu().numpy()


class RenderFMOverlay:
    """RenderFM drawn over the 3D views of a SlicerContext (headless or Slicer's own); no GUI
    calls.

    settle_s: seconds a camera must stay still before the full-resolution render (CameraFollower);
    clock: monotonic seconds (injectable for tests); background: render camera changes in a worker
    thread (one render in flight per view; show(), set_hidden_groups() and the comparison still
    render at once).
    """

    def __init__(self, context: SlicerContext, *, settle_s: float = 0.3,
                 clock: Callable[[], float] = time.monotonic, background: bool = False) -> None:
        import slicer

        self.context = context
        self.settle_s, self._clock = settle_s, clock
        self._worker = ThreadPoolExecutor(1, "RenderFM render") if background else None
        self._now = False  # set while a render must happen at once, not in the worker
        self.last_error: str | None = None
        self.last_render_s: float | None = None
        self.last_note: str | None = None  # e.g. that the crop box holds nothing (not an error)
        self._shown: dict[str, _Shown] = {}
        self._hidden_groups: tuple[str, ...] = ()
        self._crop: CropBox | None = None
        # A weak reference: the scene must not keep a forgotten overlay (and its views) alive.
        overlay = weakref.ref(self)

        def scene_closing(*_: object) -> None:
            if (alive := overlay()) is not None:
                alive.close()

        self._scene_observers = [
            context.scene.AddObserver(event, scene_closing)
            for event in (slicer.vtkMRMLScene.StartCloseEvent, slicer.vtkMRMLScene.EndCloseEvent)
        ]

    # --- showing ---------------------------------------------------------------------------

    def show(self, target: ViewTarget, gaussians: SixDGaussians, *, draft_scale: float = 0.5,
             wait: bool = True) -> None:
        """Draw gaussians over target's view, following its camera; renders once at full size.

        draft_scale: fraction of the view's size (in (0, 1]) rendered while the camera moves.
        wait=True renders now and raises the first render's error (and shows nothing) for the
        status line; wait=False with background=True renders in the worker instead, tick() shows
        the frame and its error lands in last_error.
        """
        if not 0.0 < draft_scale <= 1.0:
            raise RenderFMError(f"draft scale must be in (0, 1], not {draft_scale}")
        key = _key(target)
        shown = self._shown.get(key)
        if shown is None:
            shown = _Shown(target, gaussians, ImageLayer(target.render_window), draft_scale)
            shown.follower = CameraFollower(
                target.camera_node, lambda camera, draft: self._render(shown, camera, draft),
                self.settle_s, self._clock)
            self._shown[key] = shown
        shown.gaussians, shown.draft_scale = gaussians, draft_scale
        try:
            if wait:
                self._render_now(shown)
            else:
                shown.follower.render_now()  # in the worker, when there is one
        except Exception:
            self.hide(target)
            raise

    def hide(self, target: ViewTarget) -> None:
        """Remove RenderFM from target's view and stop following its camera (safe to repeat)."""
        shown = self._shown.pop(_key(target), None)
        if shown is None:
            return
        shown.follower.close()
        shown.pending = None  # a frame still rendering is dropped when it arrives
        shown.layer.remove()
        target.render()

    def is_shown(self, target: ViewTarget) -> bool:
        """Whether RenderFM is drawn in target's view."""
        return _key(target) in self._shown

    def tick(self) -> int:
        """Let every shown view catch up with its camera (at most one render each); the number of
        frames shown (rendered now, or finished in the background). Errors go to last_error and
        the log, never out of here."""
        shown_frames = 0
        for shown in list(self._shown.values()):
            try:
                if shown.pending is not None:
                    if not shown.pending.done():
                        continue  # one render in flight per view; the camera waits
                    future, shown.pending = shown.pending, None
                    self._display(shown, *future.result())
                    shown_frames += 1
                if tuple(shown.target.render_window.GetSize()) != shown.size:
                    shown.follower.mark_dirty()  # the view was resized: redraw at its new size
                shown_frames += shown.follower.tick() is not None and self._worker is None
            except Exception as error:  # the GUI must survive any failure mid-drag
                self._record(error)
        return shown_frames

    def rendering(self) -> bool:
        """Whether a background render is still running (background=True only)."""
        return any(shown.pending is not None and not shown.pending.done()
                   for shown in self._shown.values())

    def set_hidden_groups(self, groups: Iterable[str]) -> None:
        """Hide these anatomical groups (segmentation.GROUPS) and redraw the shown views; an unknown
        group raises SegmentationError and changes nothing."""
        previous, self._hidden_groups = self._hidden_groups, tuple(groups)
        try:
            for shown in list(self._shown.values()):
                self._render_now(shown)
        except RenderFMError:
            self._hidden_groups = previous
            raise

    @property
    def crop(self) -> CropBox | None:
        """The box (RAS mm) the shown views are cropped to; None: nothing cropped."""
        return self._crop

    def set_crop(self, box: CropBox | None) -> None:
        """Crop every shown view to box (None: show all); the next ticks redraw as after a
        camera change: drafts while the box keeps moving, one full render once it has been
        still for settle_s. The Gaussians stay: no new preparation."""
        if box == self._crop:
            return
        self._crop = box
        for shown in self._shown.values():
            shown.follower.mark_dirty()

    def close(self) -> None:
        """Hide RenderFM in every view (the scene's StartCloseEvent and EndCloseEvent call this)."""
        for shown in list(self._shown.values()):
            self.hide(shown.target)

    def dispose(self) -> None:
        """close() and stop observing the scene (when the module's logic goes away)."""
        self.close()
        for tag in self._scene_observers:
            self.context.scene.RemoveObserver(tag)
        self._scene_observers = []
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)

    def _render_now(self, shown: _Shown, if_needed: bool = False) -> None:
        """Render shown's current camera at full size in this thread (CameraFollower.render_now)."""
        with self._at_once():
            shown.follower.render_now(if_needed)

    @contextlib.contextmanager
    def _at_once(self) -> Iterator[None]:
        self._now = True
        try:
            yield
        finally:
            self._now = False

    def _render(self, shown: _Shown, camera: Camera, draft: bool) -> None:
        """Render shown.gaussians for camera at the view's size (times draft_scale for drafts):
        here, or in the worker (background=True, camera changes only)."""
        width, height = shown.size = tuple(shown.target.render_window.GetSize())
        if draft:
            width = max(1, round(width * shown.draft_scale))
            height = max(1, round(height * shown.draft_scale))
        work = (shown.gaussians, camera, (width, height), self._hidden_groups, self._crop)
        shown.pending = None  # whatever is still rendering is older than this
        if self._worker is not None and not self._now:
            shown.pending = self._worker.submit(_frame, *work)
        else:
            self._display(shown, *_frame(*work))

    def _display(self, shown: _Shown, rgba: np.ndarray, seconds: float) -> None:
        """Put a rendered frame into shown's layer and redraw the view."""
        shown.layer.set_image(rgba)
        shown.target.render()
        self.last_render_s = seconds
        self.last_error = None
        empty = self._crop is not None and not rgba[..., 3].any()
        self.last_note = "nothing of the CT lies inside the crop box" if empty else None

    def _record(self, error: Exception) -> None:
        """Keep a render error for the status line and log it (with a traceback if unexpected)."""
        if isinstance(error, RenderFMError):
            self.last_error = str(error)
            logger.error("RenderFM: %s", error)
        else:
            self.last_error = f"{type(error).__name__}: {error}"
            logger.exception("RenderFM: rendering failed")

    # --- capturing -----------------------------------------------------------------------

    def capture_native(self, target: ViewTarget) -> np.ndarray:
        """target's view without RenderFM's layer (Slicer's own rendering): [H, W, 3] uint8."""
        shown = self._shown_in(target)
        shown.layer.visible = False
        try:
            return _capture(target)
        finally:
            shown.layer.visible = True

    def capture_renderfm(self, target: ViewTarget) -> np.ndarray:
        """target's view with RenderFM's layer at full resolution and the view's own volume
        renderings hidden: [H, W, 3] uint8."""
        shown = self._shown_in(target)
        hidden = _visible_volume_renderings(self.context, target)
        try:
            for display in hidden:
                display.SetVisibility(0)
            same_size = shown.size == tuple(target.render_window.GetSize())
            self._render_now(shown, if_needed=same_size and shown.pending is None)
            return _capture(target)
        finally:
            for display in hidden:
                display.SetVisibility(1)
            target.render()

    def _shown_in(self, target: ViewTarget) -> _Shown:
        shown = self._shown.get(_key(target))
        if shown is None:
            raise RenderFMError("RenderFM is not shown in this view: render first, then compare")
        return shown


def _frame(gaussians: SixDGaussians, camera: Camera, size: tuple[int, int],
           hidden_groups: tuple[str, ...], crop: CropBox | None) -> tuple[np.ndarray, float]:
    """(straight RGBA [H, W, 4] of api.render at size (width, height), seconds it took); an
    empty crop box gives an empty image (last_note says so)."""
    start = time.perf_counter()
    frame = api.render(gaussians, camera, size, hidden_groups=hidden_groups, crop=crop)
    return straight_rgba(frame), time.perf_counter() - start


def _key(target: ViewTarget) -> str:
    return target.view_node.GetID()


def _capture(target: ViewTarget) -> np.ndarray:
    target.render()
    return read_pixels(target.render_window)


def _visible_volume_renderings(context: SlicerContext, target: ViewTarget) -> list:
    """The volume rendering display nodes visible in target's view."""
    nodes = context.scene.GetNodesByClass("vtkMRMLVolumeRenderingDisplayNode")
    view_id = target.view_node.GetID()
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())
            if nodes.GetItemAsObject(i).GetVisibility()
            and nodes.GetItemAsObject(i).IsDisplayableInView(view_id)]
