"""Every CUDA source compiles with NVRTC, the compiler CuPy uses, without a GPU.

NVRTC comes from pip (the 'test' extra): `cuda-bindings` 12.x (module cuda.bindings.nvrtc) opens
libnvrtc.so.12 at first use, looking in site-packages/nvidia/cuda_nvrtc/lib, where
`nvidia-cuda-nvrtc-cu12` puts it, before the system's library path (cuda-pathfinder). Each source
from kernel_sources() is compiled to PTX for every architecture the renderer targets; a failure
shows NVRTC's log. A deliberate error proves that the #line directives make the log name the real
file and line (DESIGN.md section 8).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from RenderFMLib.render.cuda import CUDA_DIR, kernel_sources

nvrtc = pytest.importorskip(
    "cuda.bindings.nvrtc",
    reason="NVRTC bindings not installed: pip install 'cuda-bindings>=12.8,<13' "
           "'nvidia-cuda-nvrtc-cu12>=12.8,<13' (the 'test' extra)")

ARCHITECTURES = (75, 80, 86, 89, 90)  # Turing, Ampere (A100, RTX 30), Ada, Hopper
KERNELS = {"precompute.cu": {"precompute"}, "precompute_bwd.cu": {"precompute_bwd"},
           "slice_project_fwd.cu": {"slice_project_fwd"},
           "slice_project_bwd.cu": {"slice_project_bwd"},
           "tile_keys.cu": {"tile_counts", "tile_keys", "tile_ranges"},
           "blend_fwd.cu": {"blend_fwd"}, "blend_bwd.cu": {"blend_bwd"}}
_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')


def _check(result, call: str) -> None:
    if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"{call} failed: {result}")


def compile_source(source: str, name: str, arch: int,
                   cubin: bool = False) -> tuple[bool, str, bytes]:
    """(compiled?, NVRTC's log, PTX or CUBIN) for `source` at compute capability `arch`.

    PTX is what CuPy loads and JIT-compiles for the GPU it finds; a CUBIN also runs NVRTC's
    assembler (register allocation, resource limits).
    """
    try:
        result, program = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    except RuntimeError as error:  # libnvrtc itself is missing
        pytest.skip(f"NVRTC's library is not loadable ({error}): pip install "
                    "'nvidia-cuda-nvrtc-cu12>=12.8,<13'")
    _check(result, "nvrtcCreateProgram")
    get_size, get = ((nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN) if cubin
                     else (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX))
    try:
        options = [f"--gpu-architecture={'sm' if cubin else 'compute'}_{arch}".encode()]
        (compiled,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
        result, size = nvrtc.nvrtcGetProgramLogSize(program)
        _check(result, "nvrtcGetProgramLogSize")
        log = b" " * size
        _check(nvrtc.nvrtcGetProgramLog(program, log)[0], "nvrtcGetProgramLog")
        ok = compiled == nvrtc.nvrtcResult.NVRTC_SUCCESS
        output = b""
        if ok:
            result, size = get_size(program)
            _check(result, get_size.__name__)
            output = b" " * size
            _check(get(program, output)[0], get.__name__)
        return ok, log.rstrip(b"\0 ").decode(errors="replace"), output
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def test_kernel_sources_cover_every_file():
    sources = kernel_sources()
    assert set(sources) == {p.name for p in CUDA_DIR.glob("*.cu")}
    assert set(KERNELS) <= set(sources)
    for name, text in sources.items():
        assert '#include "' not in text, name  # every local include inlined
        assert f'#line 1 "{(CUDA_DIR / name).resolve().as_posix()}"' in text
        assert '#line 1 "' + (CUDA_DIR / "gaussian_math.cuh").resolve().as_posix() in text


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("name", sorted(kernel_sources()))
def test_compiles_to_ptx(name: str, arch: int):
    source = kernel_sources()[name]
    ok, log, ptx = compile_source(source, name, arch)
    assert ok, f"NVRTC failed on {name} for compute_{arch}:\n{log}"
    assert "warning" not in log.lower(), f"NVRTC warned on {name} for compute_{arch}:\n{log}"
    text = ptx.decode(errors="replace")
    entries = set(_ENTRY.findall(source))
    assert KERNELS.get(name, set()) <= entries
    for entry in entries:  # extern "C": the PTX entry keeps its plain name
        assert re.search(rf"\.entry\s+{entry}\s*\(", text), f"{entry} missing from {name}'s PTX"
    assert f".target sm_{arch}" in text


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("name", sorted(kernel_sources()))
def test_assembles_to_cubin(name: str, arch: int):
    ok, log, cubin = compile_source(kernel_sources()[name], name, arch, cubin=True)
    assert ok, f"NVRTC failed on {name} for sm_{arch}:\n{log}"
    assert cubin.startswith(b"\x7fELF")
    for entry in KERNELS.get(name, ()):
        assert entry.encode() in cubin


def test_compile_error_names_the_real_file_and_line(tmp_path: Path):
    (tmp_path / "broken.cuh").write_text(
        '#include "gaussian_math.cuh"\n'
        "// line 2\n"
        "__device__ float broken_helper() { return undefined_in_header; }\n")
    (tmp_path / "gaussian_math.cuh").write_text((CUDA_DIR / "gaussian_math.cuh").read_text())
    (tmp_path / "broken.cu").write_text(
        '#include "broken.cuh"\n'
        "// line 2\n"
        "// line 3\n"
        'extern "C" __global__ void broken() { float x = undefined_in_kernel; }\n')
    source = kernel_sources(tmp_path)["broken.cu"]
    ok, log, _ = compile_source(source, "broken.cu", 80)
    assert not ok
    header, kernel = ((tmp_path / f).resolve().as_posix() for f in ("broken.cuh", "broken.cu"))
    assert re.search(rf'"?{re.escape(header)}"?\(3\).*undefined_in_header', log), log
    assert re.search(rf'"?{re.escape(kernel)}"?\(4\).*undefined_in_kernel', log), log


def test_missing_include_is_reported(tmp_path: Path):
    (tmp_path / "orphan.cu").write_text('// a kernel\n#include "nowhere.cuh"\n')
    with pytest.raises(FileNotFoundError, match=r"orphan\.cu:2: .*nowhere\.cuh"):
        kernel_sources(tmp_path)
