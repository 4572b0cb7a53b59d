"""PyTorch reference of each render stage: precompute -> slice_project -> tile_keys -> blend,
and render_torch, one frame through all of them."""

from .blend import blend
from .pipeline import render_torch
from .precompute import precompute
from .slice_project import slice_gaussians, slice_project
from .tile_keys import tile_keys

__all__ = ["blend", "precompute", "render_torch", "slice_gaussians", "slice_project", "tile_keys"]
