"""CPU twin of the CUDA stages: the same math headers (../cuda/*.cuh) built by the host C++
compiler into loops over Gaussians, tiles and pixels, called through ctypes.

    kernels.cpp   precompute, slice_project_fwd / _bwd, tile_instances / tile_bin, blend_fwd /
                  _bwd, may_reach (threads: torch's)
    march.cpp     dvr_march: the dvr reference renderer's ray marching (groundtruth/dvr_march.py)
    parallel.h    the threads' split of the work, shared by both
    loader.py     available(), library(): one build of both per machine (cached on disk), one
                  load per process; no compiler means no CPU library, and api.render and dvr use
                  their PyTorch references
    pipeline.py   the stages with the reference's signatures and autograd, and render_cpu
"""

from .loader import available
from .pipeline import render_cpu

__all__ = ["available", "render_cpu"]
