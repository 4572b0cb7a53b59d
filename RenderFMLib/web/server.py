"""Serving `renderfm view`: the trame server, its state bound to a ViewerSession, the poll timer.

It binds to 127.0.0.1 unless told otherwise and says so in its ready line (READY, then the URL).
Everything runs in the server's asyncio thread except RenderFM's renders and the preparation
(worker threads); torch gets one thread fewer than the CPUs so the views' own rendering keeps one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import RenderFMError
from ..segmentation.classes import GROUPS
from ..transfer import preset_names
from .page import build_page
from .session import QUALITIES, Inputs, ViewerSession
from .views import create_views

READY = "renderfm view: ready at"
"""The start of the line printed once the page can be opened (the tests wait for it)."""
POLL_S = 0.05  # how often the timer shows finished RenderFM frames and updates the progress
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_port(host: str, port: int) -> None:
    """RenderFMError with what to do when host:port cannot be bound (in use, unknown address)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise RenderFMError(f"port {port} on {host} is in use (another server?): choose "
                                "another with --port") from None
        raise RenderFMError(f"cannot listen on {host}:{port}: {error.strerror or error}"
                            ) from None


def ready_line(host: str, port: int) -> str:
    """The ready line: the URL, and who can reach it."""
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    reach = ("this machine only; --host chooses another address"
             if host in LOOPBACK else
             f"listening on {host}: anyone who can reach this address sees the CT")
    return f"{READY} {url} ({reach})"


def serve(inputs: Inputs, host: str, port: int, max_pixels: int,
          say: Callable[[str], None] = print) -> None:
    """Serve the page for inputs on host:port until interrupted (Ctrl-C or SIGTERM: then it
    says "stopped" and returns)."""
    import torch
    from trame.app import get_server
    from trame_slicer import module as slicer_module

    check_port(host, port)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    server = get_server("renderfm-view", client_type="vue3")
    server.enable_module(slicer_module)
    views = create_views(server, max_pixels)
    session = ViewerSession(views.context, views.native, views.renderfm, inputs)
    views.reset_camera()  # fit the native view to the CT; SideBySide gives RenderFM its camera
    _bind(server, session)
    build_page(server, views.templates, _actions(server, session, views.reset_camera))

    def ready(**_: Any) -> None:
        say(ready_line(host, server.port))
        asyncio.get_running_loop().create_task(_poll(server, session))

    server.controller.on_server_ready.add(ready)
    try:
        with _argv_alone():
            server.start(host=host, port=port, open_browser=False, show_connection_info=False,
                         timeout=0)
    finally:
        session.close()
    say("renderfm view: stopped")


def _bind(server: Any, session: ViewerSession) -> None:
    """Initial state and the handlers of the choices (preset, visible groups, crop, shift)."""
    state = server.state
    state.update(_crop_state(session.bounds))
    state.update({
        "preset": session.preset, "presets": preset_names(),
        "quality": next(iter(QUALITIES)),
        "qualities": list(QUALITIES),
        "groups": list(GROUPS), "visible_groups": list(GROUPS), "preparing": False,
        "progress": 0, "progress_message": "", "status": session.status(), "measurement": "",
        "error": "", "cameras": session.cameras(), "shift": session.shift,
    })

    @state.change("preset")
    def preset_changed(preset: str, **_: Any) -> None:
        _report(state, lambda: session.set_preset(preset))
        state.preset, state.shift = session.preset, session.shift

    @state.change("crop", "crop_r", "crop_a", "crop_s")
    def crop_changed(crop: bool, crop_r: list, crop_a: list, crop_s: list, **_: Any) -> None:
        _report(state, lambda: session.set_crop([*crop_r, *crop_a, *crop_s] if crop else None))

    @state.change("shift")
    def shift_changed(shift: float, **_: Any) -> None:
        _report(state, lambda: session.set_shift(shift))

    @state.change("visible_groups")
    def groups_changed(visible_groups: list[str], **_: Any) -> None:
        hidden = [group for group in GROUPS if group not in visible_groups]
        _report(state, lambda: session.set_hidden_groups(hidden))


def _crop_state(bounds: list[float]) -> dict:
    """The Crop switch (off) and the R, A, S range sliders: their limits crop_limits (6 numbers,
    the CT's bounds in RAS mm rounded out to whole mm) and first values, the whole CT."""
    limits = [float(math.floor(low) if index % 2 == 0 else math.ceil(low))
              for index, low in enumerate(bounds)]
    return {"crop": False, "crop_limits": limits, "crop_r": limits[0:2], "crop_a": limits[2:4],
            "crop_s": limits[4:6]}


def _actions(server: Any, session: ViewerSession, reset_camera: Callable[[], None]) -> dict:
    """The toolbar's buttons."""
    state = server.state

    def measure() -> None:
        state.measurement = "measuring..."
        state.flush()
        _report(state, lambda: setattr(state, "measurement", session.measure()))

    return {
        "render": lambda: _report(state, lambda: session.render(state.quality)),
        "cancel": session.cancel,
        "measure": measure,
        "reset_camera": reset_camera,
    }


def _report(state: Any, action: Callable[[], None]) -> None:
    """Run action; a RenderFMError goes to the page's error line instead of the log."""
    try:
        action()
        state.error = ""
    except RenderFMError as error:
        state.error = str(error)


async def _poll(server: Any, session: ViewerSession) -> None:
    """Every POLL_S: RenderFM's finished frames, the preparation, the progress and status."""
    state = server.state
    while True:
        session.poll()
        fraction, message = session.progress
        with state:
            state.preparing = session.preparing
            state.progress = round(100 * fraction)
            state.progress_message = message
            state.status = session.status()
            state.cameras = session.cameras()
        await asyncio.sleep(POLL_S)


@contextlib.contextmanager
def _argv_alone() -> Iterator[None]:
    """trame parses sys.argv for its own options; `renderfm view`'s are not for it."""
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        yield
    finally:
        sys.argv = argv
