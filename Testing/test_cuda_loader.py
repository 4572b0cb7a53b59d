"""The CUDA renderer's Python side that needs no GPU: lazy CuPy, availability, input checks, the
buffer pool. (The kernels themselves: test_cuda_gpu.py, on a GPU or the emulated one.)"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import types

import pytest
import torch

from RenderFMLib.errors import RenderFMError
from RenderFMLib.render.cuda import loader
from RenderFMLib.render.cuda.buffers import HEADROOM, BufferPool
from RenderFMLib.render.cuda.pipeline import (
    CAMERA_SHAPES,
    GAUSSIAN_SHAPES,
    check_inputs,
    render_cuda,
)

CPU = torch.device("cpu")


def test_importing_the_cuda_package_needs_no_cupy():
    code = ("import sys; import RenderFMLib.render.cuda.pipeline, RenderFMLib.render.cuda.stages; "
            "assert 'cupy' not in sys.modules, 'cupy imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def _cupy(device_count) -> types.ModuleType:
    """A minimal CuPy whose runtime reports `device_count` (a number or an exception)."""
    def count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    return module


@pytest.mark.parametrize("cupy, torch_cuda, reason", [
    (None, True, "CuPy is not installed"),
    (_cupy(1), False, "torch sees no CUDA device"),
    (_cupy(RuntimeError("cudaErrorNoDevice")), True, r"CuPy sees no CUDA device \(cudaErrorNo"),
    (_cupy(0), True, "CuPy sees no CUDA device"),
])
def test_available_says_why_not(monkeypatch, cupy, torch_cuda, reason):
    monkeypatch.setitem(sys.modules, "cupy", cupy)  # None: `import cupy` raises ImportError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_cuda)
    found = loader.available()
    assert found is not None and re.search(reason, found), found


def test_available_when_all_is_there(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _cupy(2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loader.available() is None


def _inputs(n: int = 5) -> tuple[dict, dict]:
    gaussians = {k: torch.zeros(n, *shape) for k, shape in GAUSSIAN_SHAPES.items()}
    camera = {k: torch.zeros(shape) for k, shape in CAMERA_SHAPES.items()}
    return gaussians, camera


def test_render_cuda_says_why_it_cannot_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    gaussians, camera = _inputs()
    with pytest.raises(RenderFMError, match="cannot run here: CuPy is not installed"):
        render_cuda(*gaussians.values(), *list(camera.values())[:3], 8, 8, camera["background"])


@pytest.mark.parametrize("change, message", [
    (lambda g, c: g.update(sh=torch.zeros(5, 8)), r"sh has shape \(5, 8\), expected \(5, 9\)"),
    (lambda g, c: g.update(rgb=torch.zeros(4, 3)), r"rgb has shape \(4, 3\), expected \(5, 3\)"),
    (lambda g, c: c.update(intrinsics=torch.zeros(4, 4)), r"intrinsics has shape"),
    (lambda g, c: g.update(s_c=torch.zeros(5, 3, 3, dtype=torch.float64)), "s_c is torch.float64"),
    (lambda g, c: c.update(background=torch.zeros(3, device="meta")), "background is .* on meta"),
    (lambda g, c: c["world_to_camera"].requires_grad_(), "does not differentiate the camera"),
    (lambda g, c: None, "needs the Gaussians on a CUDA device, not cpu"),
])
def test_check_inputs_rejects(change, message):
    gaussians, camera = _inputs()
    change(gaussians, camera)
    with pytest.raises(RenderFMError, match=message):
        check_inputs(gaussians, camera, 8, 8)


@pytest.mark.parametrize("size", [(0, 8), (8, -1), (8.0, 8)])
def test_check_inputs_rejects_image_size(size):
    gaussians, camera = _inputs()
    with pytest.raises(RenderFMError, match="image size must be positive integers"):
        check_inputs(gaussians, camera, *size)


def test_buffer_pool_reuses_and_grows():
    pool = BufferPool()
    first = pool.get("keys", 100, torch.int64, CPU)
    assert first.shape == (100,) and pool.allocations == 1
    again = pool.get("keys", 100, torch.int64, CPU)
    smaller = pool.get("keys", 60, torch.int64, CPU)
    assert again.data_ptr() == first.data_ptr() == smaller.data_ptr() and pool.allocations == 1
    within = pool.get("keys", int(100 * HEADROOM), torch.int64, CPU)  # the headroom
    assert within.data_ptr() == first.data_ptr() and pool.allocations == 1
    grown = pool.get("keys", 200, torch.int64, CPU)
    assert grown.shape == (200,) and pool.allocations == 2
    other = pool.get("counts", 10, torch.int64, CPU)  # names do not share
    assert other.data_ptr() != grown.data_ptr() and pool.allocations == 3
    assert pool.get("keys", 0, torch.int64, CPU).shape == (0,)
    pool.clear()
    pool.get("keys", 10, torch.int64, CPU)
    assert pool.allocations == 4


def test_launch_skips_empty_work():
    calls = []
    loader.launch(lambda *args: calls.append(args), 0, ())
    assert calls == []
    loader.launch(lambda *args: calls.append(args), 1000, ("x",))
    assert calls == [((4,), (loader.THREADS,), ("x",))]
    assert loader.as_arg(torch.zeros(0)) is None


def test_missing_nvrtc_is_a_clear_error(monkeypatch):
    """CuPy without a loadable NVRTC fails at the first compile: RenderFMError saying so."""
    class RawModule:
        def __init__(self, **_):
            pass

        def compile(self):
            raise OSError("libnvrtc.so.12: cannot open shared object file")

    class Device(contextlib.nullcontext):
        compute_capability = "90"

    cupy = _cupy(1)
    cupy.RawModule = RawModule
    cupy.cuda.Device = Device
    cupy.cuda.compiler = types.SimpleNamespace(CompileException=type("E", (Exception,), {}))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(loader, "_cache", {})
    with pytest.raises(RenderFMError, match="CuPy cannot compile the CUDA kernels .*libnvrtc"):
        loader.kernels(CPU)
