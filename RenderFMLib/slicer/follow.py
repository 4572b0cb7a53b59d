"""Follow a Slicer camera node: changes coalesce into drafts while it moves, then one full render.

The camera node's ModifiedEvent fires once per change (../shared/SLICER_HEADLESS.md: a 10-step
mouse drag fires it 10 times). The observer only records that the camera changed and when; a timer
(a qt.QTimer in Slicer, the tests call it directly) calls tick(), which renders at most once:
a draft (reduced resolution) while the last change is younger than settle_s, then exactly one full
render once the camera has been still for settle_s. A clean follower renders nothing, and neither
does a change that leaves the view as last drawn (e.g. VTK resetting the clipping range).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..camera import Camera

RenderCallback = Callable[[Camera, bool], None]
"""on_render(camera, draft): draw the view for camera (RAS mm); draft=True while it still moves."""


class CameraFollower:
    """Calls on_render when camera_node (a vtkMRMLCameraNode) changes, at most once per tick().

    settle_s: seconds without change after which the full-resolution render follows;
    clock: a monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        camera_node: Any,
        on_render: RenderCallback,
        settle_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import vtk

        self._node = camera_node
        self._on_render = on_render
        self._settle_s = float(settle_s)
        self._clock = clock
        self._pending_full = False  # a change has not been rendered at full resolution yet
        self._moved = False  # a change has not been rendered at all yet
        self._changed_at = 0.0
        self._drawn: tuple[Camera, bool] | None = None  # (camera, draft) of the last render
        self._observer = camera_node.AddObserver(vtk.vtkCommand.ModifiedEvent, self._on_modified)

    def _on_modified(self, *_: Any) -> None:
        self._pending_full = True
        self._moved = True
        self._changed_at = self._clock()

    def mark_dirty(self) -> None:
        """Redraw even if the camera is unchanged (e.g. new Gaussians): the next ticks render as
        after a camera change now."""
        self._drawn = None
        self._on_modified()

    @property
    def dirty(self) -> bool:
        """Whether a full render is still due."""
        return self._pending_full

    def tick(self) -> str | None:
        """Render at most once: "draft" while changes are younger than settle_s and not yet drawn,
        "full" once settled, None when there is nothing new to draw.

        Errors from the camera conversion or on_render propagate; a failed draft leaves the full
        render due, a failed full render is not retried until the camera changes again.
        """
        if self._observer is None or not self._pending_full:
            return None
        settled = self._clock() - self._changed_at >= self._settle_s
        if not settled and not self._moved:
            return None  # the last draft still shows the latest camera
        self._moved = False
        self._pending_full = not settled
        camera = self._camera()
        if self._drawn is not None and self._drawn[0] == camera:
            if not self._drawn[1]:
                self._pending_full = False
                return None  # the view already shows this camera at full resolution
            if not settled:
                return None  # the view already shows this camera as a draft
        self._draw(camera, draft=not settled)
        return "draft" if not settled else "full"

    def render_now(self, if_needed: bool = False) -> None:
        """Render the current camera at full resolution now (e.g. when first shown); with
        if_needed, only if the view does not show it at full resolution yet. Errors propagate."""
        camera = self._camera()
        self._pending_full = self._moved = False
        if not (if_needed and self._drawn == (camera, False)):
            self._draw(camera, draft=False)

    def _camera(self) -> Camera:
        from .camera import camera_from_node

        return camera_from_node(self._node)

    def _draw(self, camera: Camera, draft: bool) -> None:
        self._drawn = None
        self._on_render(camera, draft)
        self._drawn = (camera, draft)

    def close(self) -> None:
        """Stop observing the camera node (idempotent); tick() then renders nothing."""
        if self._observer is not None:
            self._node.RemoveObserver(self._observer)
            self._observer = None
        self._pending_full = self._moved = False
