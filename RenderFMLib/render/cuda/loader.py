"""Compile the CUDA kernels once per process with CuPy (NVRTC) and launch them on torch's stream.

CuPy is imported here, lazily, and nowhere else: importing RenderFMLib.render.cuda needs neither
CuPy nor a GPU. `available()` says whether this process can use the kernels; `kernels(device)`
compiles every ``.cu`` source of this package (kernel_sources: includes inlined, #line
directives kept) with ``cupy.RawModule`` the first time a device is used, and caches the
kernels per (device index, compute capability) for the life of the process (CuPy also caches
the compiled binaries on disk, in ~/.cupy/kernel_cache, so a second process skips NVRTC).

Options: ``-std=c++17`` only. No ``--use_fast_math``: it flushes denormals and replaces expf,
sqrtf and divisions with approximations, which breaks the NaN culling and the agreement with
the PyTorch reference that the tests check (gaussian_math.cuh). Every kernel is a plain
``extern "C"`` function, so no name expressions are needed.

`launch_scope(device)` makes CuPy's current device and stream those of torch for `device`, so
kernels queue behind (and before) torch's own work on that stream without synchronizing.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator

import numpy as np
import torch

from ...errors import RenderFMError
from . import kernel_sources

LOG = logging.getLogger(__name__)
COMPILE_OPTIONS = ("-std=c++17",)
THREADS = 256  # per block of the per-Gaussian (grid-stride) kernels
MAX_BLOCKS = 65535  # grid-stride kernels need no more blocks than this
_cache: dict[tuple[int, str], dict] = {}
_lock = threading.Lock()


def available() -> str | None:
    """None when the CUDA kernels can run in this process, else why not (one sentence)."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda12x)"
    except Exception as error:  # a broken install: missing CUDA libraries...
        return f"CuPy cannot be imported ({error})"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device (a CPU-only torch build, or no GPU or driver)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # cupy's CUDARuntimeError: no driver...
        return f"CuPy sees no CUDA device ({error})"
    return None if count > 0 else "CuPy sees no CUDA device"


def _cupy():
    import cupy

    return cupy


def _device_index(device: torch.device) -> int:
    if device.index is not None:
        return device.index
    return torch.cuda.current_device() if device.type == "cuda" else 0


def kernels(device: torch.device) -> dict:
    """Every kernel by name (cupy.RawKernel), compiled for `device` on first use.

    RenderFMError with NVRTC's log if a source does not compile.
    """
    cupy = _cupy()
    index = _device_index(device)
    key = (index, str(cupy.cuda.Device(index).compute_capability))
    with _lock:
        if key not in _cache:
            with cupy.cuda.Device(index):
                _cache[key] = _compile(cupy)
        return _cache[key]


def _compile(cupy) -> dict:
    found = {}
    for name, source in kernel_sources().items():
        module = cupy.RawModule(code=source, options=COMPILE_OPTIONS)
        try:
            module.compile()
        except cupy.cuda.compiler.CompileException as error:
            raise RenderFMError(f"the CUDA kernels in {name} do not compile with NVRTC:\n"
                                f"{error}") from None
        except (OSError, RuntimeError) as error:  # NVRTC itself missing or broken
            raise RenderFMError(f"CuPy cannot compile the CUDA kernels ({error}); CuPy needs "
                                "NVRTC: pip install nvidia-cuda-nvrtc-cu12, or a CUDA "
                                "toolkit") from None
        for entry in _entries(source):
            found[entry] = module.get_function(entry)
    LOG.debug("compiled %d CUDA kernels", len(found))
    return found


def _entries(source: str) -> list[str]:
    """Names of the extern "C" __global__ functions in `source`."""
    return re.findall(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(', source)


@contextlib.contextmanager
def launch_scope(device: torch.device) -> Iterator[None]:
    """CuPy's current device and stream set to torch's current ones for `device`."""
    cupy = _cupy()
    index = _device_index(device)
    pointer = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    stream = cupy.cuda.ExternalStream(pointer) if pointer else cupy.cuda.Stream.null
    with cupy.cuda.Device(index), stream:
        yield


def as_arg(tensor: torch.Tensor):
    """A kernel argument for a contiguous tensor: a zero-copy CuPy view through DLPack (None for
    an empty tensor, whose pointer the kernels never read)."""
    return _cupy().from_dlpack(tensor.detach()) if tensor.numel() else None


def launch(kernel, items: int, args: tuple) -> None:
    """Run a grid-stride kernel over `items` (nothing if 0) with THREADS-thread blocks."""
    if items > 0:
        blocks = min((items + THREADS - 1) // THREADS, MAX_BLOCKS)
        kernel((blocks,), (THREADS,), args)


def i64(value: int) -> np.int64:
    """A `long long` kernel argument."""
    return np.int64(value)


def i32(value: int) -> np.int32:
    """An `int` kernel argument."""
    return np.int32(value)
