"""One frame with the PyTorch reference: slice_project -> tile_keys -> blend, on any device.

The twin of render/cuda/pipeline.py's render_cuda: the same inputs and outputs, so api.render
can use either.
"""

from __future__ import annotations

import torch

from .blend import blend
from .slice_project import slice_project
from .tile_keys import REFERENCE_TILE_SIZE, tile_keys


def render_torch(
    means: torch.Tensor,
    dir_means: torch.Tensor,
    s_c: torch.Tensor,
    gains: torch.Tensor,
    s_dd_inv: torch.Tensor,
    opacity_logits: torch.Tensor,
    rgb: torch.Tensor,
    sh: torch.Tensor,
    specular_sh: torch.Tensor,
    world_to_camera: torch.Tensor,
    intrinsics: torch.Tensor,
    camera_centre: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rgb [H, W, 3] (background included), alpha [H, W], depth [H, W] (mm) of the Gaussians
    (precomputed s_c, gains, s_dd_inv) seen by the camera (OpenCV extrinsics and intrinsics in
    pixels, centre in RAS mm); differentiable."""
    projected = slice_project(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                              specular_sh, world_to_camera, intrinsics, camera_centre, width,
                              height)
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height, REFERENCE_TILE_SIZE)
    return blend(projected["means2d"], projected["conics"], projected["colors"],
                 projected["opacities"], projected["depths"], ids, ranges, width, height,
                 background, REFERENCE_TILE_SIZE)
