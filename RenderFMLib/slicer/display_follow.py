"""Follow a CT's volume rendering display node: its crop at once, its transfer function through
a new preparation once the user stops changing it.

Slicer's Volume Rendering module keeps what the user sets in the display node: the Crop checkbox
(CroppingEnabled) and the ROI node, whose handles move it (one ModifiedEvent per move), and the
volume property node, whose points a preset choice replaces and the Shift slider moves (one
ModifiedEvent per change, measured headless). A DisplayFollower observes the three: a crop change
goes to the overlay at once (RenderFMOverlay.set_crop: drafts while the ROI moves, the Gaussians
unchanged), a transfer function change is only recorded; tick() (the module's timer) asks for a
new preparation with the current transfer function once it has been still for debounce_s, so a
burst of slider moves costs one preparation. The caller keeps the old picture until it is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..transfer import Preset
from .native import preset_from_property_node
from .roi import display_crop


class DisplayFollower:
    """Keeps overlay (a RenderFMOverlay) cropped as display (a vtkMRMLVolumeRenderingDisplayNode)
    crops, and calls reprepare(preset) once per burst of transfer function changes.

    debounce_s: seconds without a change before reprepare; clock: monotonic seconds
    (injectable for tests).
    """

    def __init__(self, display: Any, overlay: Any, reprepare: Callable[[Preset], None], *,
                 debounce_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._display, self._overlay, self._reprepare = display, overlay, reprepare
        self._debounce_s, self._clock = float(debounce_s), clock
        self._look_changed_at: float | None = None  # an unprepared transfer function change
        self._observed: list[tuple[Any, int]] = []
        self._observe()
        overlay.set_crop(display_crop(display))

    @property
    def display(self) -> Any:
        """The followed vtkMRMLVolumeRenderingDisplayNode."""
        return self._display

    def _observe(self) -> None:
        """Observe the display node, its ROI node and its volume property node (again, as the
        display node may have been given other ones)."""
        import vtk

        self._forget()
        watched = [(self._display, self._display_changed),
                   (self._display.GetROINode(), self._crop_changed),
                   (self._display.GetVolumePropertyNode(), self._look_changed)]
        self._observed = [(node, node.AddObserver(vtk.vtkCommand.ModifiedEvent, callback))
                          for node, callback in watched if node is not None]

    def _forget(self) -> None:
        for node, tag in self._observed:
            node.RemoveObserver(tag)
        self._observed = []

    def _display_changed(self, *_: Any) -> None:
        """The Crop checkbox, or another ROI or volume property node (a new transfer function)."""
        nodes = [node for node, _ in self._observed]
        new_look = self._display.GetVolumePropertyNode() not in nodes
        if new_look or self._display.GetROINode() not in nodes:
            self._observe()
        if new_look:
            self._look_changed()
        self._crop_changed()

    def _crop_changed(self, *_: Any) -> None:
        self._overlay.set_crop(display_crop(self._display))

    def _look_changed(self, *_: Any) -> None:
        self._look_changed_at = self._clock()

    @property
    def look_pending(self) -> bool:
        """Whether a transfer function change still waits for its preparation."""
        return self._look_changed_at is not None

    def prepared(self) -> None:
        """Forget a transfer function change still waiting: the caller has just started a
        preparation with the current transfer function itself (e.g. the user pressed Render)."""
        self._look_changed_at = None

    def tick(self) -> bool:
        """Call reprepare with the current transfer function if it changed and has been still
        for debounce_s; whether it did. reprepare's errors propagate (the change stays
        unprepared until the next one)."""
        if self._look_changed_at is None or \
                self._clock() - self._look_changed_at < self._debounce_s:
            return False
        self._look_changed_at = None
        self._reprepare(preset_from_property_node(self._display.GetVolumePropertyNode()))
        return True

    def close(self) -> None:
        """Stop observing (safe to repeat); the overlay keeps its last crop."""
        self._forget()
        self._look_changed_at = None
