"""Rendering 6D Gaussians: the per-stage pipeline (DESIGN.md sections 4 and 6).

reference/ holds the PyTorch implementation of every stage (any device, differentiable); a CUDA
twin of each stage with the same inputs and outputs is planned under cuda/.
"""
