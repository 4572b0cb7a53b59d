"""One frame with the CPU kernels (kernels.cpp): the stages, autograd, and render_cpu.

    precompute      precompute / precompute_bwd     autograd: _Precompute
    slice_project   slice_project_fwd / _bwd        autograd: _SliceProject
    tile_keys       tile_instances / tile_bin       no gradient (integers)
    blend           blend_fwd / blend_bwd           autograd: _Blend
    may_reach       may_reach                       no gradient (a cull before the stages)

Each stage takes and returns what its PyTorch twin (../reference) does, so `render_cpu` has
render_torch's signature and api.render can use either. The blend bins into TILE_SIZE tiles,
the GPU's 16: each Gaussian of a tile's list visits only the pixels of its box within the tile,
so a larger tile costs few wasted alpha tests and saves binning (8 px tiles were faster before
the boxes).
These functions trust their inputs (float32, contiguous or made so, on the CPU): api.render
chooses this path only for such Gaussians. The camera gets no gradient. Threads: torch's
(torch.get_num_threads()).
"""

from __future__ import annotations

import functools

import torch

from ..reference.tile_keys import tile_grid
from .loader import library
from .loader import pointer as _ptr

TILE_SIZE = 16  # measured in Testing/bench/bench_cpu_kernels.py


def _threads() -> int:
    return torch.get_num_threads()


class _Precompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_scales, corr_logits):
        log_scales, corr_logits = log_scales.contiguous(), corr_logits.contiguous()
        n = log_scales.shape[0]
        outputs = [torch.empty(n, 3, 3, dtype=torch.float32) for _ in range(3)]
        library().precompute(n, _ptr(log_scales), _ptr(corr_logits), *map(_ptr, outputs),
                             _threads())
        ctx.save_for_backward(log_scales, corr_logits)
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grads):
        log_scales, corr_logits = ctx.saved_tensors
        grads = [g.contiguous() for g in grads]  # zeros for an unused output (materialised)
        outputs = torch.empty_like(log_scales), torch.empty_like(corr_logits)
        library().precompute_bwd(len(log_scales), _ptr(log_scales), _ptr(corr_logits),
                                 *map(_ptr, grads), *map(_ptr, outputs), _threads())
        return outputs


def precompute(log_scales: torch.Tensor, corr_logits: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """reference.precompute on the CPU kernels: (S_c, K, S_dd^-1), each [N, 3, 3]."""
    return _Precompute.apply(log_scales, corr_logits)


class _SliceProject(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                specular_sh, world_to_camera, intrinsics, camera_centre, width: int,
                height: int):
        inputs = [t.contiguous() for t in (means, dir_means, s_c, gains, s_dd_inv,
                                           opacity_logits, rgb, sh, specular_sh)]
        camera = [t.detach().contiguous() for t in (world_to_camera, intrinsics, camera_centre)]
        n = means.shape[0]
        new = functools.partial(torch.empty, dtype=torch.float32)
        outputs = (new(n, 2), new(n, 3), new(n), torch.empty(n, dtype=torch.int32), new(n),
                   new(n, 3))
        library().slice_project_fwd(n, *map(_ptr, inputs), *map(_ptr, camera), width, height,
                                    *map(_ptr, outputs), _threads())
        ctx.save_for_backward(*inputs, *camera)
        ctx.size = (width, height)
        ctx.mark_non_differentiable(outputs[3])
        return outputs

    @staticmethod
    def backward(ctx, grad_means2d, grad_conics, grad_depths, _grad_radii, grad_opacities,
                 grad_colors):
        *inputs, world_to_camera, intrinsics, camera_centre = ctx.saved_tensors
        cotangents = [g.contiguous() for g in (grad_means2d, grad_conics, grad_depths,
                                                grad_opacities, grad_colors)]
        grads = [torch.empty_like(t) for t in inputs]
        library().slice_project_bwd(
            inputs[0].shape[0], *map(_ptr, inputs),
            *map(_ptr, (world_to_camera, intrinsics, camera_centre)), *ctx.size,
            *map(_ptr, cotangents), *map(_ptr, grads), _threads())
        return (*grads, None, None, None, None, None)


PROJECTED = ("means2d", "conics", "depths", "radii", "opacities", "colors")


def slice_project(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                  specular_sh, world_to_camera, intrinsics, camera_centre, width: int,
                  height: int) -> dict[str, torch.Tensor]:
    """reference.slice_project on the CPU kernels: the same inputs and outputs by name."""
    outputs = _SliceProject.apply(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb,
                                  sh, specular_sh, world_to_camera, intrinsics, camera_centre,
                                  width, height)
    return dict(zip(PROJECTED, outputs))


def may_reach(params: dict[str, torch.Tensor], world_to_camera: torch.Tensor,
              intrinsics: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """reference.reach.may_reach on the CPU kernels: [N] bool, False only for Gaussians that
    slice_project culls for this camera."""
    inputs = [params[name].detach().contiguous()
              for name in ("means", "log_scales", "corr_logits", "opacity_logits")]
    camera = [t.detach().contiguous() for t in (world_to_camera, intrinsics)]
    out = torch.empty(len(inputs[0]), dtype=torch.bool)
    library().may_reach(len(out), *map(_ptr, inputs), *map(_ptr, camera), width, height,
                        _ptr(out), _threads())
    return out


def tile_keys(means2d: torch.Tensor, radii: torch.Tensor, depths: torch.Tensor, width: int,
              height: int, tile_size: int = TILE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """reference.tile_keys on the CPU kernels: (gaussian_ids [M] int64 sorted by tile then
    depth, tile_ranges [tiles_y * tiles_x, 2] int64), equal to the reference's, by a count per
    tile and a sort within each tile instead of one sort of every instance."""
    tiles_x, tiles_y = tile_grid(width, height, tile_size)
    footprint = [means2d.detach().contiguous(), radii.to(torch.int32).contiguous()]
    n = len(radii)
    if n >= 1 << 32:
        raise ValueError(f"tile_keys on the CPU takes fewer than 2^32 Gaussians, not {n}")
    total = torch.zeros(1, dtype=torch.int64)
    library().tile_instances(n, *map(_ptr, footprint), tile_size, width, height, _ptr(total),
                             _threads())
    ids = torch.empty(int(total), dtype=torch.int64)
    ranges = torch.empty(tiles_x * tiles_y, 2, dtype=torch.int64)
    library().tile_bin(n, *map(_ptr, footprint), _ptr(depths.detach().contiguous()), tile_size,
                       width, height, tiles_x * tiles_y, _ptr(ids), _ptr(ranges), _threads())
    return ids, ranges


class _Blend(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, gaussian_ids, tile_ranges,
                width: int, height: int, background):
        footprint = [t.contiguous() for t in (means2d, conics, colors, opacities, depths)]
        binning = [gaussian_ids.contiguous(), tile_ranges.contiguous()]
        background = background.contiguous()
        new = functools.partial(torch.zeros, dtype=torch.float32)
        rgb, alpha, depth, final_t = new(height, width, 3), new(height, width), \
            new(height, width), new(height, width)
        n_consumed = torch.zeros(height, width, dtype=torch.int32)
        library().blend_fwd(*map(_ptr, footprint), *map(_ptr, binning), tile_ranges.shape[0],
                            TILE_SIZE, width, height, _ptr(background),
                            *map(_ptr, (rgb, alpha, depth, final_t, n_consumed)), _threads())
        ctx.save_for_backward(*footprint, *binning, background, alpha, depth, final_t, n_consumed)
        ctx.size = (width, height)
        return rgb, alpha, depth

    @staticmethod
    def backward(ctx, grad_rgb, grad_alpha, grad_depth):
        *footprint, ids, ranges, background, alpha, depth, final_t, n_consumed = ctx.saved_tensors
        width, height = ctx.size
        n = footprint[0].shape[0]
        cotangents = [g.contiguous() for g in (grad_rgb, grad_alpha, grad_depth)]
        grads = torch.zeros(n, 10, dtype=torch.float32)
        library().blend_bwd(*map(_ptr, footprint), *map(_ptr, (ids, ranges)), ranges.shape[0],
                            TILE_SIZE, width, height, n, _ptr(background),
                            *map(_ptr, (alpha, depth, final_t, n_consumed)),
                            *map(_ptr, cotangents), _ptr(grads), _threads())
        grad_background = None
        if ctx.needs_input_grad[9]:  # rgb = ... + (1 - alpha) background, as in the reference
            grad_background = ((1.0 - alpha)[..., None] * grad_rgb).sum((0, 1))
        means2d, conics, colors, opacities, depths = grads.split([2, 3, 3, 1, 1], dim=-1)
        return (means2d, conics, colors, opacities[:, 0], depths[:, 0], None, None, None, None,
                grad_background)


def blend(means2d, conics, colors, opacities, depths, gaussian_ids, tile_ranges, width: int,
          height: int, background) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """reference.blend on the CPU kernels, for TILE_SIZE tiles: (rgb [H, W, 3], alpha [H, W],
    depth [H, W] mm), differentiable with respect to the per-Gaussian inputs and background."""
    return _Blend.apply(means2d, conics, colors, opacities, depths, gaussian_ids, tile_ranges,
                        width, height, background)


def render_cpu(
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
    """render_torch's frame on the CPU kernels: rgb [H, W, 3], alpha [H, W], depth [H, W] mm of
    float32 CPU Gaussians; differentiable with respect to the Gaussians and the background."""
    projected = slice_project(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                              specular_sh, world_to_camera, intrinsics, camera_centre, width,
                              height)
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height, TILE_SIZE)
    return blend(projected["means2d"], projected["conics"], projected["colors"],
                 projected["opacities"], projected["depths"], ids, ranges, width, height,
                 background)
