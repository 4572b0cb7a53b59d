"""Loading Mitsuba 3 for the path tracer: the variant, and the libLLVM its CPU variants need.

Mitsuba's LLVM variants need libLLVM 19 (Debian/Ubuntu: `apt-get install libllvm19`): Dr.Jit
refuses 14, and 15 (measured) or 16 abort the process at the first kernel compile. Before
Mitsuba is first imported, DRJIT_LIBLLVM_PATH is pointed at the oldest libLLVM >= 19 found in
the usual Linux folders unless the user set it; if the LLVM backend is missing or an older
libLLVM is loaded, rendering with llvm_ad_rgb raises RenderFMError instead of crashing.

Variants: cuda_ad_rgb (a CUDA GPU), llvm_ad_rgb (CPU, vectorized; images depend on the thread
count) and scalar_rgb (CPU, one sample at a time; no libLLVM needed, images independent of the
thread count; about 1.3x the CPU time of llvm_ad_rgb on the sample CT, measured).
"""

from __future__ import annotations

import glob
import os
import re
import sys

from ..errors import RenderFMError

VARIANTS = ("cuda_ad_rgb", "llvm_ad_rgb", "scalar_rgb")
MIN_LLVM = 19
"""Oldest libLLVM the LLVM variants run on."""


def _llvm_version(path: str) -> int | None:
    """LLVM major version from a library file name (libLLVM-19.so, libLLVM.so.19.1), or None."""
    name = os.path.basename(os.path.realpath(path))
    match = re.match(r"libLLVM-(\d+)", name) or re.match(r"libLLVM\.so\.(\d+)", name)
    return int(match.group(1)) if match else None


def libllvm_candidates() -> dict[int, str]:
    """The libLLVM shared libraries in the usual Linux places, by major version."""
    folders = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
               *sorted(glob.glob("/usr/lib/llvm-*/lib"))]
    found: dict[int, str] = {}
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(folder, "libLLVM*.so*"))):
            version = _llvm_version(path)
            if version is not None and os.path.isfile(path):
                found.setdefault(version, path)
    return found


def _llvm_advice(found: dict[int, str]) -> str:
    older = f" (found only libLLVM {', '.join(map(str, sorted(found)))})" if found else ""
    return (f"Mitsuba's CPU variant llvm_ad_rgb needs libLLVM {MIN_LLVM} or newer{older}: install "
            f"it (Debian/Ubuntu: `apt-get install libllvm{MIN_LLVM}`) or point DRJIT_LIBLLVM_PATH "
            "at it, or render with variant='scalar_rgb'")


def llvm_problem() -> str | None:
    """Why llvm_ad_rgb cannot run here (no libLLVM >= MIN_LLVM found on Linux), else None; looks
    at files only, imports nothing."""
    if sys.platform != "linux" or "DRJIT_LIBLLVM_PATH" in os.environ:
        return None
    found = libllvm_candidates()
    return None if any(v >= MIN_LLVM for v in found) else _llvm_advice(found)


def _choose_libllvm() -> None:
    """Point Dr.Jit at libLLVM >= MIN_LLVM (the oldest such) unless DRJIT_LIBLLVM_PATH is set.

    Must run before drjit is imported: it reads the variable once, at import.
    """
    if sys.platform != "linux" or "DRJIT_LIBLLVM_PATH" in os.environ:
        return
    usable = {v: p for v, p in libllvm_candidates().items() if v >= MIN_LLVM}
    if usable:
        os.environ["DRJIT_LIBLLVM_PATH"] = usable[min(usable)]


def _loaded_llvm_version() -> int | None:
    """Major version of the libLLVM this process has loaded (Linux), else None."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = [line.split()[-1] for line in maps if "libLLVM" in line]
    except OSError:
        return None
    return _llvm_version(paths[0]) if paths else None


def import_mitsuba(variant: str | None) -> tuple[object, str]:
    """(mitsuba, variant) with Mitsuba set to `variant` (None: cuda_ad_rgb when a CUDA device
    works, else llvm_ad_rgb); RenderFMError, never a crash, where it cannot render."""
    if variant is not None and variant not in VARIANTS:
        raise RenderFMError(f"unknown Mitsuba variant {variant!r}; use one of "
                            f"{', '.join(VARIANTS)}")
    _choose_libllvm()
    try:
        import drjit as dr
        import mitsuba as mi
    except ImportError as error:
        raise RenderFMError(f"the path tracer needs Mitsuba 3 ({error}); install it with "
                            "`pip install renderfm[pathtraced]`") from None
    if variant is None:
        variant = "cuda_ad_rgb" if dr.has_backend(dr.JitBackend.CUDA) else "llvm_ad_rgb"
    if variant == "cuda_ad_rgb" and not dr.has_backend(dr.JitBackend.CUDA):
        raise RenderFMError("variant cuda_ad_rgb needs a working CUDA GPU and driver; use "
                            "llvm_ad_rgb or scalar_rgb")
    if variant == "llvm_ad_rgb":
        loaded = _loaded_llvm_version()
        if not dr.has_backend(dr.JitBackend.LLVM) or (loaded is not None and loaded < MIN_LLVM):
            raise RenderFMError(_llvm_advice(libllvm_candidates()))
    mi.set_variant(variant)
    return mi, variant
