"""Stage 4, per frame: front-to-back alpha blending of each tile's sorted Gaussians.

Per pixel (centre at u + 0.5, v + 0.5) and per Gaussian of its tile, front to back
(DESIGN.md section 6): power = -0.5 (a dx^2 + c dy^2) - b dx dy, alpha = min(0.99,
opacity * exp(power)); Gaussians with power > 0 or alpha < 1/255 are skipped; a pixel stops before
the Gaussian that would take its transmittance T below 1e-4. Each contributes alpha T of its
colour and depth.

The CUDA kernel walks each tile's list sequentially. This twin computes the same sums without a
per-pixel loop: it enumerates (pixel, instance) pairs pixel-major, which keeps each pixel's
instances in depth order, and forms every T as an exclusive cumulative sum of log(1 - alpha)
(in float64) within the pixel's segment. Tiles are processed in chunks to bound memory; the
image does not depend on the tile size (tile_keys.py), and small tiles waste fewer pairs.
"""

import torch

from .tile_keys import TILE_SIZE, tile_grid

MAX_ALPHA = 0.99
MIN_ALPHA = 1.0 / 255.0
MIN_TRANSMITTANCE = 1e-4
PAIRS_PER_CHUNK = 1 << 22


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
    """Composite the binned Gaussians into an image.

    means2d [N, 2] px, conics [N, 3], colors [N, 3], opacities [N], depths [N] mm: from
    slice_project; gaussian_ids [M] and tile_ranges [T, 2]: from tile_keys with the same
    tile_size; background [3] RGB. Returns rgb [H, W, 3] (background composited behind),
    alpha [H, W] = 1 - T, and depth [H, W] mm, the expected depth sum(w z) / alpha (0 where
    alpha is 0).
    """
    tiles_x, tiles_y = tile_grid(width, height, tile_size)
    # Per Gaussian: what the alpha test needs, then what the weights carry.
    footprint = torch.cat([means2d, conics, opacities[:, None]], dim=-1)
    channels = torch.cat([colors, torch.ones_like(depths)[:, None], depths[:, None]], dim=-1)
    counts = tile_ranges[:, 1] - tile_ranges[:, 0]
    chunks = [
        _blend_tiles(start, stop, footprint, channels, gaussian_ids, tile_ranges, tiles_x,
                     tile_size, width, height)
        for start, stop in _chunks(counts * tile_size * tile_size)
    ]
    canvas = torch.cat(chunks, dim=0).reshape(tiles_y, tiles_x, tile_size, tile_size, 5)
    canvas = canvas.permute(0, 2, 1, 3, 4).reshape(tiles_y * tile_size, tiles_x * tile_size, 5)
    canvas = canvas[:height, :width]
    alpha = canvas[..., 3]
    depth = torch.where(alpha > 0, canvas[..., 4] / alpha.clamp_min(1e-12), torch.zeros_like(alpha))
    rgb = canvas[..., :3] + (1.0 - alpha)[..., None] * background.to(canvas)
    return rgb, alpha, depth


def _chunks(pairs_per_tile: torch.Tensor) -> list[tuple[int, int]]:
    """Consecutive tile ranges [start, stop) holding about PAIRS_PER_CHUNK pairs each."""
    ends = torch.cumsum(pairs_per_tile, 0)
    count = int(ends[-1]) // PAIRS_PER_CHUNK
    marks = torch.arange(1, count + 1, device=ends.device) * PAIRS_PER_CHUNK
    cuts = torch.searchsorted(ends, marks, right=True).tolist()
    bounds = sorted({0, *[c for c in cuts if 0 < c < len(ends)], len(ends)})
    return list(zip(bounds[:-1], bounds[1:]))


def _blend_tiles(start, stop, footprint, channels, gaussian_ids, tile_ranges, tiles_x, tile_size,
                 width, height) -> torch.Tensor:
    """Blend tiles [start, stop): [(stop - start) * tile_size^2, 5] sums of w (rgb, 1, depth)."""
    device = footprint.device
    tile_pixels = tile_size * tile_size
    num_pixels = (stop - start) * tile_pixels
    pixel = torch.arange(num_pixels, device=device)
    tile = start + pixel // tile_pixels
    local = pixel % tile_pixels
    px = (tile % tiles_x) * tile_size + local % tile_size
    py = (tile // tiles_x) * tile_size + local // tile_size
    per_pixel = (tile_ranges[tile, 1] - tile_ranges[tile, 0]) * ((px < width) & (py < height))
    centres = torch.stack([px, py], dim=-1).to(footprint.dtype) + 0.5

    # (pixel, instance) pairs, pixel-major: each pixel's instances stay front to back.
    pair_pixel = torch.repeat_interleave(pixel, per_pixel)
    first = torch.cumsum(per_pixel, 0) - per_pixel
    instance = tile_ranges[tile[pair_pixel], 0] + torch.arange(len(pair_pixel), device=device)
    gid = gaussian_ids[instance - first[pair_pixel]]
    with torch.no_grad():
        alpha = _alpha(footprint[gid], centres[pair_pixel])
        keep = (alpha >= MIN_ALPHA).nonzero().squeeze(-1)
    pair_pixel, gid = pair_pixel[keep], gid[keep]
    if footprint.requires_grad:  # recompute the kept pairs' alpha inside the autograd graph
        alpha = _alpha(footprint[gid], centres[pair_pixel])
    else:
        alpha = alpha[keep]

    log_t = torch.log1p(-alpha.to(torch.float64))
    segment = torch.zeros(num_pixels, dtype=torch.float64, device=device)
    segment = segment.index_add(0, pair_pixel, log_t)
    before_segment = torch.cumsum(segment, 0) - segment
    transmittance = torch.exp(torch.cumsum(log_t, 0) - log_t - before_segment[pair_pixel])
    with torch.no_grad():
        alive = transmittance * (1.0 - alpha.to(torch.float64)) >= MIN_TRANSMITTANCE
    weight = (alpha * transmittance.to(alpha.dtype)) * alive
    out = torch.zeros(num_pixels, 5, dtype=channels.dtype, device=device)
    return out.index_add(0, pair_pixel, weight[:, None] * channels[gid])


def _alpha(footprint: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """alpha [P] of Gaussians (footprint [P, 6]: mean u, v, conic a, b, c, opacity) at pixel
    centres [P, 2]; 0 where power > 0 (a numerically non-positive-definite conic)."""
    dx = footprint[:, 0] - centres[:, 0]
    dy = footprint[:, 1] - centres[:, 1]
    power = -0.5 * (footprint[:, 2] * dx * dx + footprint[:, 4] * dy * dy)
    power = power - footprint[:, 3] * dx * dy
    alpha = torch.clamp(footprint[:, 5] * torch.exp(power.clamp_max(0.0)), max=MAX_ALPHA)
    return torch.where(power <= 0, alpha, torch.zeros_like(alpha))
