"""Which Python packages the Slicer module still needs, and which device it runs on: decided here,
never installed here.

The module's widget asks the user, then installs what missing_packages() lists with Slicer's pip
helper (torch through the PyTorch extension when it is there). Nothing here imports torch or CuPy
at import time: packages are looked up with importlib, the CUDA driver through its C library.
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys

from ..errors import RenderFMError

_CUDA_LIBRARIES = {"win32": ("nvcuda.dll",), "linux": ("libcuda.so.1", "libcuda.so")}
CUPY_FOR_DRIVER = {11: "cupy-cuda11x", 12: "cupy-cuda12x"}
"""CuPy wheel per CUDA driver major version; newer drivers run the CUDA 12 build."""
TORCH = "torch"
LIBRARY_PACKAGES = {
    "torch": TORCH,
    "numpy": "numpy",
    "SimpleITK": "SimpleITK",
    "safetensors": "safetensors",
    "PIL": "pillow",
    "tqdm": "tqdm",
    "slicerio": "slicerio",
    "pytorch_msssim": "pytorch-msssim",
}
"""Import name -> pip requirement for every core dependency of RenderFMLib (pyproject.toml's
[project] dependencies; a test keeps the two in step). Slicer ships some (numpy, SimpleITK)."""
TOTALSEGMENTATOR = "TotalSegmentator"
DEVICE_CHOICES = ("auto", "cuda", "cpu")
CPU_SLOWER = "running on the CPU, slower than on a CUDA GPU"


def installed(module: str) -> bool:
    """Whether `module` (an import name) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def cuda_driver_version() -> tuple[int, int] | None:
    """(major, minor) of the CUDA driver when it sees at least one GPU, else None."""
    for name in _CUDA_LIBRARIES.get(sys.platform, ()):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        version, count = ctypes.c_int(0), ctypes.c_int(0)
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return None
        if count.value < 1 or driver.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
        return version.value // 1000, (version.value % 1000) // 10
    return None


def cupy_requirement(driver: tuple[int, int] | None) -> str | None:
    """The CuPy wheel matching a CUDA driver version (None without a driver or below CUDA 11)."""
    if driver is None or driver[0] < min(CUPY_FOR_DRIVER):
        return None
    return CUPY_FOR_DRIVER[min(driver[0], max(CUPY_FOR_DRIVER))]


def missing_packages(auto_segmentation: bool = False) -> list[str]:
    """pip requirements the module needs and lacks: RenderFMLib's own (LIBRARY_PACKAGES, torch
    first); the CuPy wheel matching the CUDA driver when a CUDA GPU is present and CuPy is absent;
    TotalSegmentator if auto_segmentation is asked for and it is absent."""
    missing = [package for module, package in LIBRARY_PACKAGES.items() if not installed(module)]
    if not installed("cupy"):
        cupy = cupy_requirement(cuda_driver_version())
        missing += [cupy] if cupy else []
    if auto_segmentation and not installed("totalsegmentator"):
        missing.append(TOTALSEGMENTATOR)
    return missing


def resolve_device(choice: str) -> tuple[str, str]:
    """(torch device, message for the status line) for "auto", "cuda" or "cpu".

    Without a CUDA GPU, "auto" and "cuda" fall back to the CPU and the message says so.
    """
    if choice not in DEVICE_CHOICES:
        raise RenderFMError(f"unknown device '{choice}'; choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cpu":
        return "cpu", CPU_SLOWER
    import torch

    if not torch.cuda.is_available():
        return "cpu", f"CUDA not available: {CPU_SLOWER}"
    return "cuda", f"running on the GPU ({torch.cuda.get_device_name(0)})"
