"""The CUDA stages, with the inputs and outputs of their PyTorch twins (../reference).

    precompute      precompute.cu / precompute_bwd.cu              autograd: _Precompute
    slice_project   slice_project_fwd.cu / slice_project_bwd.cu    autograd: _SliceProject
    tile_keys       tile_keys.cu + torch's radix sort              no gradient (integers)
    blend           blend_fwd.cu / blend_bwd.cu                    autograd: _Blend

Tensors cross between torch and CuPy without a copy (DLPack views, loader.as_arg) and stay on
the device: every input and output is a torch tensor on the same CUDA device, and the kernels
run on torch's current stream (loader.launch_scope). The one device-to-host transfer per frame is
tile_keys' instance count M (8 bytes), which sizes the sort.

Sorting: the keys, (tile id << 32) | depth bits as int64, are sorted by torch.sort(stable=True),
a CUB radix sort on CUDA, with indices; the ids follow by a gather. Stable, as the reference's
sort is, so ties in depth keep the reference's order and gaussian_ids equal its own.

These functions trust their inputs (float32, on one CUDA device, shapes as documented in the
reference); pipeline.render_cuda checks them. The camera gets no gradient.
"""

from __future__ import annotations

import functools

import torch

from ..reference.tile_keys import TILE_SIZE, tile_grid
from .buffers import POOL
from .loader import as_arg, i32, i64, kernels, launch, launch_scope

PROJECTED = ("means2d", "conics", "depths", "radii", "opacities", "colors")  # slice_project's


class _Precompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_scales, corr_logits):
        log_scales, corr_logits = log_scales.contiguous(), corr_logits.contiguous()
        n, device = log_scales.shape[0], log_scales.device
        outputs = [torch.empty(n, 3, 3, dtype=log_scales.dtype, device=device) for _ in range(3)]
        with launch_scope(device):
            launch(kernels(device)["precompute"], n,
                   (i64(n), as_arg(log_scales), as_arg(corr_logits), *map(as_arg, outputs)))
        ctx.save_for_backward(log_scales, corr_logits)
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grads):
        log_scales, corr_logits = ctx.saved_tensors
        n, device = log_scales.shape[0], log_scales.device
        grads = [g.contiguous() for g in grads]  # zeros for an unused output (materialised)
        outputs = torch.empty_like(log_scales), torch.empty_like(corr_logits)
        with launch_scope(device):
            launch(kernels(device)["precompute_bwd"], n,
                   (i64(n), as_arg(log_scales), as_arg(corr_logits), *map(as_arg, grads),
                    *map(as_arg, outputs)))
        return outputs


def precompute(log_scales: torch.Tensor, corr_logits: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """reference.precompute on the GPU: (S_c, K, S_dd^-1), each [N, 3, 3], from log_scales
    [N, 6] and corr_logits [N, 15]."""
    return _Precompute.apply(log_scales, corr_logits)


class _SliceProject(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                specular_sh, world_to_camera, intrinsics, camera_centre, width: int,
                height: int):
        inputs = [t.contiguous() for t in (means, dir_means, s_c, gains, s_dd_inv,
                                           opacity_logits, rgb, sh, specular_sh)]
        camera = [t.contiguous() for t in (world_to_camera, intrinsics, camera_centre)]
        n, device = means.shape[0], means.device
        new = functools.partial(torch.empty, dtype=means.dtype, device=device)
        outputs = (new(n, 2), new(n, 3), new(n),
                   torch.empty(n, dtype=torch.int32, device=device), new(n), new(n, 3))
        with launch_scope(device):
            launch(kernels(device)["slice_project_fwd"], n,
                   (i64(n), *map(as_arg, inputs), *map(as_arg, camera), i32(width), i32(height),
                    *map(as_arg, outputs)))
        ctx.save_for_backward(*inputs, *camera)
        ctx.size = (width, height)
        ctx.mark_non_differentiable(outputs[3])
        return outputs

    @staticmethod
    def backward(ctx, grad_means2d, grad_conics, grad_depths, _grad_radii, grad_opacities,
                 grad_colors):
        *inputs, world_to_camera, intrinsics, camera_centre = ctx.saved_tensors
        n, device = inputs[0].shape[0], inputs[0].device
        cotangents = [g.contiguous() for g in (grad_means2d, grad_conics, grad_depths,
                                                grad_opacities, grad_colors)]
        grads = [torch.empty_like(t) for t in inputs]
        with launch_scope(device):
            launch(kernels(device)["slice_project_bwd"], n,
                   (i64(n), *map(as_arg, inputs),
                    *map(as_arg, (world_to_camera, intrinsics, camera_centre)),
                    i32(ctx.size[0]), i32(ctx.size[1]), *map(as_arg, cotangents),
                    *map(as_arg, grads)))
        return (*grads, None, None, None, None, None)


def slice_project(
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
) -> dict[str, torch.Tensor]:
    """reference.slice_project on the GPU: same inputs (means [N, 3] RAS mm, ..., image size px),
    same outputs by name (means2d [N, 2] px, conics [N, 3], depths [N] mm, radii [N] int32,
    opacities [N], colors [N, 3]); differentiable except for the camera."""
    outputs = _SliceProject.apply(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb,
                                  sh, specular_sh, world_to_camera, intrinsics, camera_centre,
                                  width, height)
    return dict(zip(PROJECTED, outputs))


def tile_keys(
    means2d: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """reference.tile_keys on the GPU for 16-pixel tiles: (gaussian_ids [M] int64 sorted by tile
    then depth, tile_ranges [tiles_y * tiles_x, 2] int64), equal to the reference's."""
    _check_tile_size(tile_size)
    device, n = means2d.device, radii.shape[0]
    tiles_x, tiles_y = tile_grid(width, height, TILE_SIZE)
    num_tiles = tiles_x * tiles_y
    footprint = [means2d.detach().contiguous(), radii.contiguous()]
    depths = depths.detach().contiguous()
    ranges = torch.empty(num_tiles, 2, dtype=torch.int64, device=device)
    with launch_scope(device):
        found = kernels(device)
        counts = POOL.get("counts", n, torch.int64, device)
        launch(found["tile_counts"], n,
               (i64(n), *map(as_arg, footprint), i32(width), i32(height), as_arg(counts)))
        offsets = torch.cumsum(counts, 0, out=POOL.get("offsets", n, torch.int64, device))
        m = int(offsets[-1]) if n else 0  # the frame's one device-to-host copy
        keys, ids = (POOL.get(name, m, torch.int64, device) for name in ("keys", "ids"))
        launch(found["tile_keys"], n,
               (i64(n), *map(as_arg, footprint), as_arg(depths), as_arg(offsets), i32(width),
                i32(height), as_arg(keys), as_arg(ids)))
        sorted_keys, order = (POOL.get(name, m, torch.int64, device)
                              for name in ("sorted_keys", "order"))
        torch.sort(keys, stable=True, out=(sorted_keys, order))
        gaussian_ids = ids.index_select(0, order)
        launch(found["tile_ranges"], num_tiles,
               (i64(m), as_arg(sorted_keys), i64(num_tiles), as_arg(ranges)))
    return gaussian_ids, ranges


class _Blend(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, gaussian_ids, tile_ranges,
                width: int, height: int, background):
        footprint = [t.contiguous() for t in (means2d, conics, colors, opacities, depths)]
        binning = [gaussian_ids.contiguous(), tile_ranges.contiguous()]
        background = background.contiguous()
        device = means2d.device
        new = functools.partial(torch.empty, dtype=means2d.dtype, device=device)
        rgb, alpha, depth, final_t = new(height, width, 3), new(height, width), \
            new(height, width), new(height, width)
        n_consumed = torch.empty(height, width, dtype=torch.int32, device=device)
        with launch_scope(device):
            kernels(device)["blend_fwd"](
                (tile_ranges.shape[0],), (TILE_SIZE, TILE_SIZE),
                (*map(as_arg, footprint), *map(as_arg, binning), i32(width), i32(height),
                 as_arg(background), *map(as_arg, (rgb, alpha, depth, final_t, n_consumed))))
        ctx.save_for_backward(*footprint, *binning, background, alpha, depth, final_t, n_consumed)
        ctx.size = (width, height)
        return rgb, alpha, depth

    @staticmethod
    def backward(ctx, grad_rgb, grad_alpha, grad_depth):
        *footprint, ids, ranges, background, alpha, depth, final_t, n_consumed = ctx.saved_tensors
        width, height = ctx.size
        device = alpha.device
        cotangents = [g.contiguous() for g in (grad_rgb, grad_alpha, grad_depth)]
        grads = [torch.zeros_like(t) for t in footprint]  # the kernel adds into them
        with launch_scope(device):
            kernels(device)["blend_bwd"](
                (ranges.shape[0],), (TILE_SIZE, TILE_SIZE),
                (*map(as_arg, footprint), as_arg(ids), as_arg(ranges), i32(width), i32(height),
                 as_arg(background), *map(as_arg, (alpha, depth, final_t, n_consumed)),
                 *map(as_arg, cotangents), *map(as_arg, grads)))
        grad_background = None
        if ctx.needs_input_grad[9]:  # rgb = ... + (1 - alpha) background, as in the reference
            grad_background = ((1.0 - alpha)[..., None] * grad_rgb).sum((0, 1))
        return (*grads, None, None, None, None, grad_background)


def blend(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    gaussian_ids: torch.Tensor,
    tile_ranges: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor,
    tile_size: int = TILE_SIZE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """reference.blend on the GPU for 16-pixel tiles: (rgb [H, W, 3], alpha [H, W], depth [H, W]
    mm), differentiable with respect to the per-Gaussian inputs and the background."""
    _check_tile_size(tile_size)
    return _Blend.apply(means2d, conics, colors, opacities, depths, gaussian_ids, tile_ranges,
                        width, height, background)


def _check_tile_size(tile_size: int) -> None:
    if tile_size != TILE_SIZE:
        raise ValueError(f"the CUDA stages bin into {TILE_SIZE}-pixel tiles, not {tile_size}")
