"""The network's residuals for the blocks AGP kept: run on a slab of the CT (with a halo of
slices on each side, so the result equals running it on the whole CT) and gathered at the kept
blocks' indices. Training calls it on whole crops, with gradients; build.py slab by slab.
"""

from __future__ import annotations

import torch

from ..transfer import Preset
from ..volume import Volume
from .inputs import gradient_ras, input_channels
from .model import RenderFMNetwork


def block_residuals(network: RenderFMNetwork, volume: Volume, labels: Volume | None,
                    preset: Preset, index: torch.Tensor, rows: tuple[int, int] | None = None
                    ) -> torch.Tensor:
    """Residuals [N, 37] of the blocks at index [N, 3] (k, j, i on the whole half-resolution
    grid), all within block rows `rows` = (first, end) (None: every row).

    The network sees voxel slices 2 first - halo .. 2 end + halo (clipped to the CT); a network
    without a halo (unet) sees the whole CT.
    """
    blocks = tuple(side // 2 for side in volume.shape)
    first_row, end_row = rows if rows is not None else (0, blocks[0])
    halo = network.halo_voxels()
    low, high = (0, 2 * blocks[0]) if halo is None else \
        (max(2 * first_row - halo, 0), min(2 * end_row + halo, 2 * blocks[0]))
    part = volume.slab(low, high)
    gradient = gradient_ras(volume.slab(max(low - 1, 0), min(high + 1, volume.shape[0])))
    gradient = gradient[:, low - max(low - 1, 0):][:, :high - low]
    part_labels = None if labels is None else labels.slab(low, high)
    inputs = input_channels(part, preset, part_labels, gradient)
    inputs = inputs[:, :, :2 * blocks[1], :2 * blocks[2]]
    weight = next(network.parameters())
    grid = network(inputs[None].to(weight))[0]  # [37, (high - low) / 2, J / 2, I / 2]
    k, j, i = index.to(grid.device).unbind(-1)
    return grid[:, k - low // 2, j, i].T.to(torch.float32)
