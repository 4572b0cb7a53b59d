"""Build and run the host C++ harnesses of the CUDA math headers (used by Testing/test_cuda_*.py).

A harness is one .cpp file in this folder that includes RenderFMLib/render/cuda's headers,
harness_io.h and, for per-Gaussian rows, harness_arrays.h: it reads raw little-endian arrays from
its input file in a fixed order and writes its results to its output file (each harness's header
comment gives the layout).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from RenderFMLib.render.cuda import CUDA_DIR

HERE = Path(__file__).parent


def build(name: str, out_dir: Path) -> Path:
    """Compile HERE/`name`.cpp with g++ (C++17, warnings as errors) into out_dir; skips the
    calling test when g++ is missing."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ not found: the host build of the CUDA math headers needs a C++17 compiler")
    exe = out_dir / name
    result = subprocess.run(
        [compiler, "-O2", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{CUDA_DIR}",
         str(HERE / f"{name}.cpp"), "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return exe


def run(exe: Path, tmp: Path, inputs: list[tuple[np.ndarray, type]],
        outputs: list[tuple[str, type, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """Write `inputs` (array, dtype) in order, run the harness, and read `outputs`
    (name, dtype, shape) in order; the output file must hold exactly those."""
    with open(tmp / "in.bin", "wb") as f:
        for values, dtype in inputs:
            np.ascontiguousarray(values, dtype=dtype).tofile(f)
    result = subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    raw, out, offset = (tmp / "out.bin").read_bytes(), {}, 0
    for name, dtype, shape in outputs:
        count = int(np.prod(shape))
        out[name] = np.frombuffer(raw, dtype, count, offset).reshape(shape)
        offset += np.dtype(dtype).itemsize * count
    assert offset == len(raw), f"{exe.name} wrote {len(raw)} bytes, expected {offset}"
    return out
