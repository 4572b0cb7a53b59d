"""CUDA twin of the render stages (DESIGN.md sections 4, 6 and 8).

What is here: the kernel sources, shipped as package data, one stage and direction per file.

    gaussian_math.cuh      per-Gaussian math as ``__host__ __device__`` functions, each the float32
                           twin of a function in ../reference (the host compiler tests it too)
    precompute.cu          ``precompute``: S_c, K, S_dd^-1 per Gaussian (once per model)
    slice_project_fwd.cu   ``slice_project_fwd``: slice, shade, project and cull (per frame)
    blend_fwd.cu           ``blend_fwd``: front-to-back blending, one 16x16 block per tile with
                           shared-memory batches of 256 Gaussians (per frame); also writes each
                           pixel's final transmittance and instance count for the backward pass

and `kernel_sources`, which gives each ``.cu`` file's text ready for NVRTC: its quoted includes
inlined, with ``#line`` directives so that compiler errors name the real file and line.

Planned: a loader that compiles these sources once per process through CuPy's ``RawModule``
(NVRTC), reached lazily so that importing RenderFMLib never needs CuPy or a GPU; tile keys with
CuPy's radix sort; ``blend_bwd.cu``; ``slice_project_bwd.cu``; and autograd
functions that wrap each stage with the same inputs and outputs as its PyTorch reference.
Nothing in this package imports CuPy.
"""

from __future__ import annotations

import re
from pathlib import Path

CUDA_DIR = Path(__file__).parent

_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def kernel_sources(directory: Path = CUDA_DIR) -> dict[str, str]:
    """Each ``*.cu`` file in `directory` (by name) -> its text with its quoted includes inlined.

    A ``#line`` directive opens every inlined file and resumes the including one, so NVRTC's
    messages point at the real file and line. A header is inlined once per source (as with
    ``#pragma once``); ``<...>`` includes are left to the compiler.
    """
    return {path.name: _inline(path, set()) for path in sorted(Path(directory).glob("*.cu"))}


def _inline(path: Path, seen: set[Path]) -> str:
    path = path.resolve()
    seen.add(path)
    out = [f'#line 1 "{path.as_posix()}"']
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _LOCAL_INCLUDE.match(line)
        if match is None:
            out.append(line)
            continue
        header = (path.parent / match.group(1)).resolve()
        if not header.is_file():
            raise FileNotFoundError(f"{path}:{number}: included file {header} does not exist")
        if header not in seen:
            out.append(_inline(header, seen))
        out.append(f'#line {number + 1} "{path.as_posix()}"')
    return "\n".join(out) + "\n"
