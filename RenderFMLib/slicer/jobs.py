"""A preparation running in a worker thread, for a GUI that must not freeze: poll, cancel, collect.

torch releases the GIL while it computes, so Slicer's GUI thread keeps running and polls the job
from a timer; MRML nodes are read in the GUI thread before the job starts (the scene is not
thread-safe), so the worker only sees volumes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import api
from ..errors import RenderFMError
from ..gaussians import SixDGaussians


class Cancelled(RenderFMError):
    """The user cancelled a preparation."""


class PrepareJob:
    """RenderFMCore.prepare running in a worker thread; poll done() and progress from the GUI."""

    def __init__(self, work: Callable[[api.Progress, threading.Event], SixDGaussians]) -> None:
        self._cancel = threading.Event()
        self._progress = (0.0, "starting")
        self._result: SixDGaussians | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="RenderFM prepare",
                                        daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[api.Progress, threading.Event], SixDGaussians]) -> None:
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
        """The Gaussians, waiting up to timeout seconds (None: for ever); re-raises the worker's
        error (Cancelled after cancel()); TimeoutError if it is still running."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the preparation is still running")
        if self._error is not None:
            raise self._error
        return self._result
