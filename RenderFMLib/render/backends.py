"""Which renderer draws a frame: the CUDA kernels, the CPU kernels, or the PyTorch reference.

    "cuda"   render_cuda (cuda/): float32 Gaussians on a CUDA device, CuPy installed
    "cpu"    render_cpu (cpu/): float32 Gaussians on the CPU, a C++ compiler to build it once
    "torch"  render_torch (reference/): any device and dtype, the reference the others match
    "auto"   the kernels for the Gaussians' device where they can run, else the reference,
             saying why once per reason (logging, INFO)

All three take the same inputs and return the same outputs (rgb, alpha, depth), differentiable
with respect to the Gaussians; the kernels agree with the reference to float32 rounding.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import NamedTuple

import torch

from ..errors import RenderFMError
from . import reference
from .cpu import available as cpu_problem
from .cpu import pipeline as cpu_stages
from .cpu import render_cpu
from .cuda import stages as cuda_stages
from .cuda.loader import available as cuda_problem
from .cuda.pipeline import render_cuda
from .reference import reach, render_torch

LOG = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "cpu", "cuda")


def pick(backend: str, device: torch.device, dtype: torch.dtype) -> Callable:
    """The renderer for `backend` and Gaussians of this device and dtype; RenderFMError for an
    unknown backend, or "cpu" where the CPU kernels cannot take them ("cuda" says why itself)."""
    if backend not in BACKENDS:
        raise RenderFMError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return render_torch
    if backend == "cuda":
        return render_cuda  # a RenderFMError that says why, where it cannot run
    if backend == "cpu":
        reason = _cpu_reason(device, dtype)
        if reason is not None:
            raise RenderFMError(f"the CPU kernels cannot render these Gaussians: {reason}")
        return render_cpu
    reason = _cuda_reason(device, dtype) if device.type == "cuda" else _cpu_reason(device, dtype)
    if reason is None:
        return render_cuda if device.type == "cuda" else render_cpu
    _log_fallback(reason)
    return render_torch


class Stages(NamedTuple):
    """Stages of one renderer, each with the reference's signature."""

    precompute: Callable
    slice_project: Callable
    may_reach: Callable


def pick_stages(device: torch.device, dtype: torch.dtype) -> Stages:
    """The stages of the renderer that "auto" picks for these Gaussians: for work on the
    Gaussians outside a whole frame (may_reach: the reference's on a GPU)."""
    found = pick("auto", device, dtype)
    if found is render_cpu:
        return Stages(cpu_stages.precompute, cpu_stages.slice_project, cpu_stages.may_reach)
    stages = cuda_stages if found is render_cuda else reference
    return Stages(stages.precompute, stages.slice_project, reach.may_reach)


def _cuda_reason(device: torch.device, dtype: torch.dtype) -> str | None:
    reason = _cuda_problem()
    if reason is None and dtype != torch.float32:
        reason = f"the Gaussians are {dtype}, the CUDA kernels take float32"
    return reason


def _cpu_reason(device: torch.device, dtype: torch.dtype) -> str | None:
    if device.type != "cpu":
        return f"the Gaussians are on {device}, the CPU kernels take them on the CPU"
    if dtype != torch.float32:
        return f"the Gaussians are {dtype}, the CPU kernels take float32"
    return _cpu_problem()


@functools.lru_cache(maxsize=1)
def _cuda_problem() -> str | None:
    """Why the CUDA kernels cannot run in this process (None: they can); asked once."""
    return cuda_problem()


def _cpu_problem() -> str | None:
    """Why the CPU kernels cannot run in this process (None: they can); loader.py asks once."""
    return cpu_problem()


@functools.cache
def _log_fallback(reason: str) -> None:
    LOG.info("rendering with the PyTorch renderer: %s", reason)
