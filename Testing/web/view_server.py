"""`renderfm view` in a child process on a free loopback port, for the browser tests and the
benchmark (Testing/bench/bench_view.py)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "Resources" / "sample"
READY_S = 90.0  # server start on 2 busy cores: 4.6 s measured (3.4 s of imports), 20x margin


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
            raise TimeoutError(f"no ready line within {READY_S:.0f} s:\n" + "".join(self.lines))
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
