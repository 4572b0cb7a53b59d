"""CPU twin of the CUDA stages: the same math headers (../cuda/*.cuh) built by the host C++
compiler into loops over Gaussians, tiles and pixels, called through ctypes.

    kernels.cpp   precompute, slice_project_fwd / _bwd, blend_fwd / _bwd (threads: torch's)
    loader.py     available(), library(): one build per machine (cached on disk), one load per
                  process; no compiler means no CPU kernels, and api.render uses the reference
    pipeline.py   the stages with the reference's signatures and autograd, and render_cpu
"""

from .loader import available
from .pipeline import render_cpu

__all__ = ["available", "render_cpu"]
