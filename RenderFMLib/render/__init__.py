"""Rendering 6D Gaussians: one frame through four stages (DESIGN.md sections 4 and 6).

    precompute -> slice_project -> tile_keys -> blend

reference/ holds the PyTorch implementation of every stage (any device, differentiable) and
render_torch, a whole frame (reference/pipeline.py); cuda/ holds their CUDA twins, forward and
backward, run through CuPy, and render_cuda (cuda/pipeline.py). api.render picks one by its
backend argument: "torch", "cuda", or "auto" (the kernels where they can run).
"""
