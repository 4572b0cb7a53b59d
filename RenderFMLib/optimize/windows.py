"""Rendering a window of a view: the pixels [x0, x0 + side) x [y0, y0 + side) of a size x size
image of a camera (a shifted principal point), differentiable.

Fine-tuning renders crops of full-resolution views: the detail the display will show, at a
fraction of a whole frame's cost. scale 2 renders the window of the view at half its size (the
coarser pixels a smaller display has), against the target averaged over 2 x 2 pixels.

The renderer is api.render's "auto" choice (render/backends.py): the CPU kernels for float32
Gaussians on the CPU where they build, the CUDA kernels on a GPU, else the PyTorch reference. A
window sees a fraction of the Gaussians (a median of 38 % for fine-tuning's 128 px windows of the
sample at 1.5 mm, CT-Bone): only those that may reach it (render/reference/reach.py, a bound from
the parameters alone, 43 %) go through the differentiable renderer, so that precompute and
slice_project, forward and backward, run for them alone. The frame and the gradients are those of
rendering all of them: the others reach no pixel of the window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..camera import Camera, camera_tensors
from ..render.backends import pick, pick_stages


def render_window(params: dict[str, torch.Tensor], camera: Camera, size: int,
                  window: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rgb [side, side, 3] over black, alpha [side, side]) of the window (x0, y0, side), in
    pixels of a size x size view, of the Gaussians `params` (SixDGaussians.params() names)."""
    x0, y0, side = window
    dtype, device = params["means"].dtype, params["means"].device
    world_to_camera, intrinsics, centre = camera_tensors(camera, size, size, device, dtype)
    intrinsics = intrinsics.clone()
    intrinsics[0, 2] -= x0
    intrinsics[1, 2] -= y0
    stages = pick_stages(device, dtype)
    kept = stages.may_reach(params, world_to_camera, intrinsics, side, side).nonzero().squeeze(-1)
    params = {name: _Rows.apply(value, kept) for name, value in params.items()}
    s_c, gains, s_dd_inv = stages.precompute(params["log_scales"], params["corr_logits"])
    rgb, alpha, _ = pick("auto", device, dtype)(
        params["means"], params["dir_means"], s_c, gains, s_dd_inv, params["opacity_logits"],
        params["rgb"], params["sh"], params["specular_sh"], world_to_camera, intrinsics, centre,
        side, side, torch.zeros(3, dtype=dtype, device=device))
    return rgb, alpha


class _Rows(torch.autograd.Function):
    """value.index_select(0, rows) for rows without repeats, whose backward copies the gradient
    into its rows (index_copy_) instead of adding it (index_add_, index_select's own): the same
    gradient, in less time (the 8 fields of 29,000 of the sample's 68,099 Gaussians at 1.5 mm:
    2.1 -> 1.2 ms; a fine-tuning step there 50.1-50.9 -> 49.1-49.2 ms, 2 runs each, AMD EPYC)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.shape = value.shape
        return value.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        return grad.new_zeros(ctx.shape).index_copy_(0, rows, grad), None


def downsample(image: torch.Tensor, scale: int) -> torch.Tensor:
    """[H, W(, C)] averaged over scale x scale pixels (H and W divisible by scale)."""
    if scale == 1:
        return image
    channels = image if image.dim() == 3 else image[..., None]
    pooled = F.avg_pool2d(channels.permute(2, 0, 1)[None], scale)[0].permute(1, 2, 0)
    return pooled if image.dim() == 3 else pooled[..., 0]
