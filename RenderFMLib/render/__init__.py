"""Rendering 6D Gaussians: one frame through four stages (DESIGN.md sections 4 and 6).

    precompute -> slice_project -> tile_keys -> blend

reference/ holds the PyTorch implementation of every stage (any device, differentiable) and
render_torch, a whole frame (reference/pipeline.py); cuda/ holds their CUDA twins, forward and
backward, run through CuPy, and render_cuda (cuda/pipeline.py); cpu/ builds the same CUDA math
headers with the host C++ compiler into loops over Gaussians, tiles and pixels, and render_cpu
(cpu/pipeline.py). backends.py picks one for api.render's backend argument: "torch", "cpu",
"cuda", or "auto" (the kernels for the Gaussians' device where they can run).
"""
