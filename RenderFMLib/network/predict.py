"""The network's residuals for the blocks AGP kept: run on the box around them (widened by the
network's halo, so the result equals running it on the whole CT) and gathered at their indices.
Training calls it on whole crops, with gradients; build.py slab by slab. The network reads the
box in LPS voxel order (voxel_order.py), whatever order the CT is stored in.
"""

from __future__ import annotations

import torch

from ..channels import NUM_CHANNELS
from ..transfer import Preset
from ..volume import Volume
from .inputs import gradient_ras, input_channels
from .model import RenderFMNetwork
from .voxel_order import VoxelOrder, from_lps, lps_order, to_lps


def block_residuals(network: RenderFMNetwork, volume: Volume, labels: Volume | None,
                    preset: Preset, index: torch.Tensor, rows: tuple[int, int] | None = None
                    ) -> torch.Tensor:
    """Residuals [N, 49] of the blocks at index [N, 3] (k, j, i on the whole half-resolution
    grid), all within block rows `rows` = (first, end) (None: every row).

    The network sees the box of voxels around those blocks widened by its halo on every side
    (clipped to the CT): the same residuals as running it on the whole CT, for the cost of the
    box. A network without a halo (unet) sees the whole CT.
    """
    blocks = tuple(side // 2 for side in volume.shape)
    if len(index) == 0:
        return torch.zeros(0, NUM_CHANNELS, device=volume.array.device)
    halo = network.halo_voxels()
    if halo is None:
        box = [(0, 2 * side) for side in blocks]
    else:
        first_row, end_row = rows if rows is not None else (0, blocks[0])
        low = index.min(0).values.tolist()
        high = (index.max(0).values + 1).tolist()
        low[0], high[0] = first_row, end_row
        box = [(max(2 * a - halo, 0), min(2 * b + halo, 2 * side))
               for a, b, side in zip(low, high, blocks, strict=True)]
    order = lps_order(volume.ijk_to_ras)
    inputs = to_lps(_inputs(volume, labels, preset, box), order)
    grid = from_lps(network(inputs[None].to(_weight(network)), lps_spacing(volume, order))[0],
                    order)
    k, j, i = (index.to(grid.device) - torch.tensor([a // 2 for a, _ in box],
                                                    device=grid.device)).unbind(-1)
    return grid[:, k, j, i].T.to(torch.float32)


def lps_spacing(volume: Volume, order: VoxelOrder) -> tuple[float, float, float]:
    """The CT's voxel spacing in mm along the network's (LPS-ordered) K, J, I."""
    along_dim = [float(volume.spacing[2 - d]) for d in range(3)]  # along the CT's own k, j, i
    spacing = [along_dim[d] for d in order.source]
    return spacing[0], spacing[1], spacing[2]


def _inputs(volume: Volume, labels: Volume | None, preset: Preset,
            box: list[tuple[int, int]]) -> torch.Tensor:
    """The input channels [6, ...] of the voxel box ((k0, k1), (j0, j1), (i0, i1)), with the
    HU gradient of the whole CT there (central differences across the box's faces)."""
    outer = [(max(a - 1, 0), min(b + 1, side)) for (a, b), side in zip(box, volume.shape,
                                                                      strict=True)]
    inner = tuple(slice(a - outer_a, b - outer_a) for (a, b), (outer_a, _) in zip(box, outer,
                                                                                  strict=True))
    gradient = gradient_ras(volume.box(tuple(outer)))[(slice(None),) + inner]
    part_labels = None if labels is None else labels.box(tuple(box))
    return input_channels(volume.box(tuple(box)), preset, part_labels, gradient)


def _weight(network: RenderFMNetwork) -> torch.Tensor:
    """A parameter of the network: its device and dtype."""
    return next(network.parameters())
