"""Build the CPU library (kernels.cpp and march.cpp) once with the host C++ compiler and load it
with ctypes.

`library()` compiles SOURCES (with ../cuda's math headers) into one shared library the first
time it is asked for on this machine, caches it on disk under a name that hashes the sources,
the compiler and its flags, and loads it once per process; `available()` says whether that
worked, else why not (one sentence). No torch extension machinery, no ninja, no Python headers:
a plain C ABI, called with tensors' data pointers. A build takes about 1 s.

Flags: ``-O3 -std=c++17 -ffp-contract=off`` and no ``-ffast-math`` or ``-march=native`` (they
change float rounding: FMA contraction, flushed denormals, approximate functions), so the CPU
path computes what the CUDA kernels and the PyTorch reference compute, to float32 rounding, and
a vectorised loop the same bits as its scalar twin (the blend's alpha tests rely on it), on
machines with FMA (ARM) too. Threads (THREADING, in order of preference): ``-fopenmp``, so the
work runs on torch's OpenMP threads (parallel.h says why), else ``-pthread`` and threads of the
library's own where the compiler has no OpenMP; both give the same bits.

The cache: ``$RENDERFM_CACHE`` if set, else ``~/.cache/renderfm``; the library is written to a
temporary name and renamed, so a concurrent or interrupted build never leaves a broken file.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..cuda import CUDA_DIR

if TYPE_CHECKING:
    import torch

LOG = logging.getLogger(__name__)
HERE = Path(__file__).parent
SOURCES = (HERE / "kernels.cpp", HERE / "march.cpp")
HEADERS = (HERE / "parallel.h", *(CUDA_DIR / name for name in
                                  ("array_io.cuh", "gaussian_math.cuh", "gaussian_math_bwd.cuh",
                                   "tile_keys.cuh")))
FLAGS = ("-O3", "-std=c++17", "-ffp-contract=off", "-shared", "-fPIC")
THREADING = (("-fopenmp",), ("-pthread",))  # the first that builds and loads is used
_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | str] = {}

P, I64, I32, F32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
SIGNATURES = {  # argument types of the library's functions, in order
    "precompute": [I64, P, P, P, P, P, I32],
    "precompute_bwd": [I64, *[P] * 7, I32],
    "slice_project_fwd": [I64, *[P] * 12, I32, I32, *[P] * 6, I32],
    "slice_project_bwd": [I64, *[P] * 12, I32, I32, *[P] * 14, I32],
    "blend_fwd": [*[P] * 7, I64, I32, I32, I32, *[P] * 6, I32],
    "blend_bwd": [*[P] * 7, I64, I32, I32, I32, I64, *[P] * 9, I32],
    "may_reach": [I64, *[P] * 6, I32, I32, P, I32],
    "tile_instances": [I64, P, P, I32, I32, I32, P, I32],
    "tile_bin": [I64, P, P, P, I32, I32, I32, I64, P, P, I32],
    "dvr_march": [P, I64, I64, I64, I32, I32, I32, P, P, I64, *[*[P] * 4, I32] * 3, *[P] * 4,
                  I64, F32, F32, P, I32],
}


def available() -> str | None:
    """None when the CPU kernels can run in this process, else why not."""
    found = _load()
    return None if isinstance(found, ctypes.CDLL) else found


def library() -> ctypes.CDLL:
    """The loaded kernels (built first if needed); RuntimeError saying why they cannot be."""
    found = _load()
    if isinstance(found, str):
        raise RuntimeError(f"the CPU kernels cannot run here: {found}")
    return found


def pointer(tensor: torch.Tensor) -> ctypes.c_void_p:
    """A contiguous CPU tensor's data, as the library's functions take it."""
    return ctypes.c_void_p(tensor.data_ptr())


def cache_dir() -> Path:
    """Where built libraries are kept."""
    root = os.environ.get("RENDERFM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "renderfm"


def _load() -> ctypes.CDLL | str:
    with _lock:
        if "lib" not in _loaded:
            _loaded["lib"] = _build_and_load()
            if isinstance(_loaded["lib"], str):
                LOG.info("the CPU kernels are not used: %s", _loaded["lib"])
        return _loaded["lib"]


def _build_and_load() -> ctypes.CDLL | str:
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        return "no C++ compiler (g++, or $CXX) on the PATH"
    problems = []
    for threading_flags in THREADING:
        found = _build_and_open(compiler, (*FLAGS, *threading_flags))
        if isinstance(found, ctypes.CDLL):
            return found
        problems.append(found)
    return problems[-1]


def _build_and_open(compiler: str, flags: tuple[str, ...]) -> ctypes.CDLL | str:
    """The library built with `flags` (from the cache, else built now), or why not."""
    path = cache_dir() / f"renderfm_cpu_{_fingerprint(compiler, flags)}.so"
    if not path.is_file():
        problem = _build(compiler, path, flags)
        if problem is not None:
            return problem
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:
        return f"the built library {path} cannot be loaded ({error})"
    for name, argtypes in SIGNATURES.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, None
    return lib


def _fingerprint(compiler: str, flags: tuple[str, ...]) -> str:
    """A hash of the sources, the flags and the compiler's version."""
    digest = hashlib.sha256()
    for path in (*SOURCES, *HEADERS):
        digest.update(path.read_bytes())
    digest.update(" ".join(flags).encode())
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        version = compiler
    digest.update(version.encode())
    return digest.hexdigest()[:16]


def _build(compiler: str, path: Path, flags: tuple[str, ...]) -> str | None:
    """Compile SOURCES with `flags` into path (atomically); None, or why it failed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".so", dir=path.parent)
        os.close(handle)
    except OSError as error:
        return f"the cache folder {path.parent} is not writable ({error})"
    try:
        result = subprocess.run([compiler, *flags, f"-I{CUDA_DIR}", *map(str, SOURCES), "-o",
                                 temporary], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            names = " and ".join(source.name for source in SOURCES)
            return f"{compiler} failed on {names}: {result.stderr.strip()[:500]}"
        os.replace(temporary, path)
        LOG.info("built the CPU kernels: %s", path)
        return None
    except (OSError, subprocess.SubprocessError) as error:
        return f"{compiler} could not be run ({error})"
    finally:
        Path(temporary).unlink(missing_ok=True)
