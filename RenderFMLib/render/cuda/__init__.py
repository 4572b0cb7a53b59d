"""CUDA twin of the render stages (DESIGN.md sections 4, 6 and 8), run through CuPy.

The kernel sources, shipped as package data, one stage and direction per file:

    gaussian_math.cuh      per-Gaussian and per-pixel math as ``__host__ __device__`` functions,
                           each the float32 twin of a function in ../reference (the tests also
                           build it with g++ and compare it with the reference)
    gaussian_math_bwd.cuh  their backward (vector-Jacobian) twins: what torch autograd gives
    tile_keys.cuh          tile binning's math: counts, keys, per-tile range search
    array_io.cuh           loads and stores of a Gaussian's row (also the CPU loops' ../cpu)
    kernel_io.cuh          grid-stride indexing, and array_io.cuh
    precompute.cu          ``precompute``: S_c, K, S_dd^-1 per Gaussian (once per model)
    slice_project_fwd.cu   ``slice_project_fwd``: slice, shade, project and cull (per frame)
    slice_project_bwd.cu   ``slice_project_bwd``: its backward, one thread per Gaussian
    tile_keys.cu           ``tile_counts``, ``tile_keys``, ``tile_ranges``: binning into 16x16
                           tiles around a stable radix sort (torch.sort)
    blend_fwd.cu           ``blend_fwd``: front-to-back blending, one 16x16 block per tile with
                           shared-memory batches of 256 Gaussians; also writes each pixel's final
                           transmittance and instance count for the backward pass
    blend_bwd.cu           ``blend_bwd``: back-to-front from those, warp-reduced atomics

The Python side, which imports CuPy lazily (importing this package needs neither CuPy nor a GPU):

    loader.py      available(), kernels(device): NVRTC compilation once per process and device,
                   launches on torch's current stream, DLPack views of torch tensors
    buffers.py     the scratch buffers reused from frame to frame
    stages.py      slice_project, tile_keys, blend: the reference's signatures, autograd
    pipeline.py    render_cuda: a whole checked frame, the reference path's signature

`kernel_sources` gives each ``.cu`` file's text ready for NVRTC: its quoted includes inlined,
with ``#line`` directives so that compiler errors name the real file and line.
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
