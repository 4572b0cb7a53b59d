"""Rendering 6D Gaussians: the per-stage pipeline (DESIGN.md sections 4 and 6).

reference/ holds the PyTorch implementation of every stage (any device, differentiable). cuda/
holds the CUDA twins as they are written (so far precompute and the slice_project forward pass,
compiled and checked without a GPU); render() uses the reference until the CUDA path is complete.
"""
