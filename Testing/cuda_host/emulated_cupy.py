"""A stand-in for CuPy (tests only, there is no GPU): runs RenderFM's real kernels on the CPU.

`make_cupy(build_dir)` returns a module with the part of CuPy's API that
RenderFMLib/render/cuda uses (RawModule, from_dlpack, cuda.Device, cuda.ExternalStream,
cuda.Stream.null, cuda.runtime.getDeviceCount, cuda.compiler.CompileException). RawModule
compiles its source with g++ and cuda_emulation.h (fibers for a block's threads) into a shared
library with one launcher per `extern "C" __global__` kernel, which ctypes calls. Tensors are
CPU torch tensors standing for device memory.

A launch is checked more strictly than CuPy would: every argument must match its kernel
parameter (a pointer gets a C-contiguous array of the pointee's dtype or None, `long long` a
numpy int64, `int` an int32, `float` a float32), since a mismatch that CuPy passes silently
(a Python int is 8 bytes) corrupts the launch on a GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

EMULATION = Path(__file__).parent / "cuda_emulation.h"
_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.DOTALL)
_SCALARS = {"long long": (ctypes.c_longlong, np.int64), "int": (ctypes.c_int, np.int32),
            "float": (ctypes.c_float, np.float32)}
_POINTEES = {"float": torch.float32, "long long": torch.int64, "int": torch.int32}


class CompileException(Exception):
    """As cupy.cuda.compiler.CompileException: str() is the compiler's log."""


@dataclass
class _Param:
    declaration: str  # the C type as written, e.g. "const float* __restrict__"
    base: str  # "float", "long long" or "int"
    pointer: bool


def _parameters(text: str) -> list[_Param]:
    params = []
    for raw in text.split(","):
        words = raw.replace("*", " * ").split()
        declaration = " ".join(words[:-1]).replace(" *", "*")
        base = " ".join(w for w in words[:-1] if w not in ("const", "*", "__restrict__"))
        if base not in _SCALARS:
            raise ValueError(f"emulated CuPy: unsupported kernel parameter '{raw.strip()}'")
        params.append(_Param(declaration, base, "*" in words))
    return params


class _DeviceArray:
    """What from_dlpack returns: a view of the tensor's memory."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def from_dlpack(tensor: torch.Tensor) -> _DeviceArray:
    return _DeviceArray(torch.from_dlpack(tensor))  # through the protocol, zero copy


class _Kernel:
    def __init__(self, function, name: str, params: list[_Param]) -> None:
        self.function, self.name, self.params = function, name, params

    def __call__(self, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0) -> None:
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.params)} parameters")
        dims = [*(tuple(grid) + (1, 1))[:3], *(tuple(block) + (1, 1))[:3]]
        if min(dims) < 1 or shared_mem:
            raise ValueError(f"{self.name}: bad launch grid {grid}, block {block}")
        self.function(*dims, *(self._convert(i, a) for i, a in enumerate(args)))

    def _convert(self, index: int, arg):
        param, where = self.params[index], f"{self.name} argument {index}"
        if param.pointer:
            if arg is None:
                return None
            if not isinstance(arg, _DeviceArray):
                raise TypeError(f"{where}: {type(arg).__name__} for a pointer")
            tensor = arg.tensor
            if tensor.dtype != _POINTEES[param.base] or not tensor.is_contiguous():
                raise TypeError(f"{where}: {tensor.dtype} (contiguous: {tensor.is_contiguous()}) "
                                f"for '{param.declaration}'")
            return tensor.data_ptr()
        ctype, dtype = _SCALARS[param.base]
        if type(arg) is not dtype:
            raise TypeError(f"{where}: {type(arg).__name__} for '{param.declaration}', "
                            f"expected numpy.{dtype.__name__}")
        return ctype(arg)


class RawModule:
    """cupy.RawModule(code=..., options=...) compiled for the host."""

    build_dir: Path  # set by make_cupy

    def __init__(self, *, code: str, options: tuple = (), **_: object) -> None:
        self.code, self.options = code, options
        self._library = None

    def compile(self) -> None:
        if self._library is not None:
            return
        code = re.sub(r"//[^\n]*", "", self.code)  # comments may hold ',' and ')'
        entries = [(name, _parameters(text)) for name, text in _ENTRY.findall(code)]
        digest = hashlib.sha256((self.code + repr(self.options)).encode()).hexdigest()[:16]
        library = self.build_dir / f"module_{digest}.so"
        if not library.exists():
            self._build(entries, library)
        self._library = ctypes.CDLL(str(library))
        self._entries = dict(entries)

    def _build(self, entries: list, library: Path) -> None:
        source = library.with_suffix(".cpp")
        source.write_text(self.code + "\n" + "\n".join(_launcher(n, p) for n, p in entries))
        result = subprocess.run(
            [shutil.which("g++") or "g++", "-O2", "-std=c++17", "-shared", "-fPIC",
             "-include", str(EMULATION), str(source), "-o", str(library)],
            capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise CompileException(result.stderr)

    def get_function(self, name: str) -> _Kernel:
        self.compile()
        if name not in self._entries:
            raise AttributeError(f"no kernel '{name}' in the module")
        function = getattr(self._library, f"emu_launch_{name}")
        params = self._entries[name]
        function.argtypes = [ctypes.c_uint] * 6 + [
            ctypes.c_void_p if p.pointer else _SCALARS[p.base][0] for p in params]
        return _Kernel(function, name, params)


def _launcher(name: str, params: list[_Param]) -> str:
    """C++ source of extern "C" emu_launch_<name>(grid xyz, block xyz, the kernel's params)."""
    declared = ", ".join(f"{p.declaration} a{i}" for i, p in enumerate(params))
    passed = ", ".join(f"a{i}" for i in range(len(params)))
    return (f'extern "C" void emu_launch_{name}(unsigned gx, unsigned gy, unsigned gz, '
            f"unsigned bx, unsigned by, unsigned bz, {declared}) {{\n"
            f"  emu::launch({{gx, gy, gz}}, {{bx, by, bz}}, [=] {{ {name}({passed}); }});\n}}\n")


class _Context:
    """A no-op context manager (device and stream selection)."""

    def __init__(self, *_: object) -> None:
        self.compute_capability = "emulated"

    def __enter__(self):
        return self

    def __exit__(self, *_: object) -> None:
        return None


def make_cupy(build_dir: Path) -> types.ModuleType:
    """The stand-in module; its RawModules build their libraries in build_dir."""
    module = types.ModuleType("cupy")
    module.RawModule = type("RawModule", (RawModule,), {"build_dir": Path(build_dir)})
    module.from_dlpack = from_dlpack
    stream = types.SimpleNamespace(null=_Context())
    module.cuda = types.SimpleNamespace(
        Device=_Context, ExternalStream=_Context, Stream=stream,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
        compiler=types.SimpleNamespace(CompileException=CompileException))
    return module
