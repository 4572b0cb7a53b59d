"""Fixtures for `renderfm view` in a real browser: the server on the bundled sample (a child
process on a free loopback port) and headless Chromium driven by Playwright.

Playwright cannot download its own browser here: it drives Debian's `chromium`
(.ci/system-packages installs it). Tests skip, saying why, where Chromium, Playwright or
trame-slicer are missing. A failing test leaves a screenshot of the page in
test-artefacts/web/ (or $RENDERFM_ARTEFACTS/web/).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "Resources" / "sample"
ARTEFACTS = Path(os.environ.get("RENDERFM_ARTEFACTS", REPO / "test-artefacts")) / "web"
READY_S = 90.0  # server start on 2 busy cores: 4.6 s measured (3.4 s of imports), 20x margin
VIEWPORT = {"width": 1280, "height": 640}  # two views of ~640 x 540 px, capped to 160k pixels


def chromium() -> str:
    """The path of Debian's Chromium; skips the test where it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (.ci/system-packages installs Debian's chromium)")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`renderfm view` in a child process; its output lines are collected as they come."""

    def __init__(self, *arguments: str) -> None:
        from RenderFMLib.web.server import READY

        self.port = free_port()
        env = dict(os.environ, VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow",
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "RenderFMLib.cli", "view", *arguments, "--port",
             str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, cwd=REPO)
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, args=(READY,), daemon=True).start()
        if not self._ready.wait(READY_S):
            self.stop()
            pytest.fail(f"no ready line within {READY_S:.0f} s:\n" + "".join(self.lines))
        self.ready_s = time.monotonic() - self.started
        self.url = f"http://127.0.0.1:{self.port}/"

    def _read(self, ready: str) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith(ready):
                self._ready.set()

    def stop(self, timeout_s: float = 30.0) -> int:
        """Ctrl-C, then the exit status (killed after timeout_s: -9)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("trame_slicer", reason="the web extra (trame-slicer) is not installed")
    server = Server(str(SAMPLE / "ct.nii.gz"), "--seg", str(SAMPLE / "segmentation.nii.gz"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (test extra)")
    executable = chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, server):
    page = browser.new_page(viewport=VIEWPORT)
    yield page
    page.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep a screenshot of the page when a test that uses it fails."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.failed and page is not None and not page.is_closed():
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / f"{item.name}.png"))
