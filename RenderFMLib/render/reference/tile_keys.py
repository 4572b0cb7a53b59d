"""Stage 3, per frame: bin the projected Gaussians into 16x16-pixel tiles, sorted by depth.

Each visible Gaussian covers the tiles that its square of half-size `radius` around `means2d`
touches; it gets one instance per tile, keyed (tile id << 32) | (float32 bits of its depth)
(tile id = tile_y * tiles_x + tile_x; positive float bits sort like the floats). After one sort,
each tile's instances are contiguous and front to back (DESIGN.md section 6).

The CUDA blend uses 16x16 tiles (one thread block each). The image does not depend on the tile
size: a Gaussian only reaches pixels within its radius, and each pixel's Gaussians stay in depth
order. The PyTorch blend therefore runs on smaller tiles, which waste fewer (pixel, Gaussian) pairs.
"""

import torch

TILE_SIZE = 16  # the CUDA blend's tile (one 16x16 thread block)
REFERENCE_TILE_SIZE = 4  # the PyTorch blend's: 3.7x faster than 16 on the sample CT at 512 px


def tile_grid(width: int, height: int, tile_size: int = TILE_SIZE) -> tuple[int, int]:
    """(tiles_x, tiles_y) covering a width x height image."""
    return (width + tile_size - 1) // tile_size, (height + tile_size - 1) // tile_size


def tile_rects(
    means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int, tile_size: int = TILE_SIZE
) -> torch.Tensor:
    """Inclusive tile rectangles [N, 4] (x0, y0, x1, y1); x1 < x0 where radius is 0 (culled)."""
    tiles_x, tiles_y = tile_grid(width, height, tile_size)
    r = radii.to(means2d.dtype).unsqueeze(-1)
    center = means2d.detach()
    low = torch.floor((center - r) / tile_size)
    high = torch.floor((center + r) / tile_size)
    limit = torch.tensor([tiles_x - 1, tiles_y - 1], device=means2d.device, dtype=means2d.dtype)
    low = torch.minimum(low.clamp_min(0), limit).to(torch.int64)
    high = torch.minimum(high.clamp_min(0), limit).to(torch.int64)
    high = torch.where((radii > 0).unsqueeze(-1), high, low - 1)
    return torch.cat([low, high], dim=-1)


def tile_keys(
    means2d: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted tile instances for one frame.

    means2d [N, 2] px, radii [N] int px (0 = culled), depths [N] mm (> 0 where visible).
    Returns (gaussian_ids [M] int64, the Gaussian of each instance, sorted by tile then depth;
    tile_ranges [tiles_y * tiles_x, 2] int64, each tile's [start, end) in gaussian_ids).
    """
    tiles_x, tiles_y = tile_grid(width, height, tile_size)
    rects = tile_rects(means2d, radii, width, height, tile_size)
    span_x = (rects[:, 2] - rects[:, 0] + 1).clamp_min(0)
    span_y = (rects[:, 3] - rects[:, 1] + 1).clamp_min(0)
    counts = span_x * span_y
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(owner), device=counts.device) - first[owner]
    tile_x = rects[owner, 0] + local % span_x[owner]
    tile_y = rects[owner, 1] + local // span_x[owner]
    tile_id = tile_y * tiles_x + tile_x
    depth_bits = depths.detach().to(torch.float32)[owner].view(torch.int32).to(torch.int64)
    keys = (tile_id << 32) | depth_bits
    keys, order = torch.sort(keys, stable=True)
    sorted_tiles = keys >> 32
    edges = torch.arange(tiles_x * tiles_y + 1, device=keys.device)
    bounds = torch.searchsorted(sorted_tiles, edges)
    return owner[order], torch.stack([bounds[:-1], bounds[1:]], dim=-1)
