"""PyTorch reference of each render stage: precompute -> slice_project -> tile_keys -> blend."""

from .blend import blend
from .precompute import precompute
from .slice_project import slice_gaussians, slice_project
from .tile_keys import tile_keys

__all__ = ["blend", "precompute", "slice_gaussians", "slice_project", "tile_keys"]
