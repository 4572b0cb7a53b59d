"""The network reads every CT in LPS voxel order (network/voxel_order.py): the same anatomy stored
in another order (flipped, axes swapped; the matrix keeps every voxel where it is) gets the same
residuals, block for block, with the offsets turned into the CT's own axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_network import _random

from RenderFMLib.channels import SLICES
from RenderFMLib.network.model import NetworkConfig
from RenderFMLib.network.predict import block_residuals
from RenderFMLib.network.voxel_order import VoxelOrder, lps_order
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import Volume


@pytest.fixture(scope="module")
def crop(sample_ct) -> Volume:
    """40 x 48 x 36 voxels (even sides) of the sample, which is stored in RAS order."""
    shift = np.eye(4)
    shift[:3, 3] = (40, 24, 40)
    return Volume(sample_ct.array[40:80, 24:72, 40:76].contiguous(),
                  sample_ct.ijk_to_ras @ shift)


def _reindexed(volume: Volume, flips: tuple[int, ...], swap: bool) -> Volume:
    """The same anatomy stored in another voxel order: array dims `flips` (0 = k, 1 = j, 2 = i)
    reversed, then j and i swapped when `swap`; the matrix follows, so every voxel stays put."""
    matrix, array = volume.ijk_to_ras.copy(), volume.array
    for dim in flips:
        matrix[:3, 3] += matrix[:3, 2 - dim] * (array.shape[dim] - 1)
        matrix[:3, 2 - dim] *= -1
    array = array.flip(list(flips)) if flips else array
    if swap:
        array = array.transpose(1, 2)
        matrix[:, [0, 1]] = matrix[:, [1, 0]]
    return Volume(array.contiguous(), matrix)


def _blocks_in(blocks: torch.Tensor, shape: tuple[int, ...], flips: tuple[int, ...],
               swap: bool) -> torch.Tensor:
    """Block indices [N, 3] (k, j, i) of a CT of `shape` in _reindexed's CT."""
    moved = blocks.clone()
    for dim in flips:
        moved[:, dim] = shape[dim] // 2 - 1 - moved[:, dim]
    return moved[:, [0, 2, 1]] if swap else moved


def test_lps_order_of_the_usual_matrices():
    as_stored = VoxelOrder((0, 1, 2), (False, False, False))
    lps = np.diag([-0.8, -0.8, 2.0, 1.0])
    assert lps_order(lps) == as_stored
    ras = lps_order(np.diag([3.0, 3.0, 3.0, 1.0]))
    assert ras.source == (0, 1, 2) and ras.flipped == (False, True, True)
    tilt = np.radians(18)  # a gantry tilt: the nearest order, LPS
    tilted = lps @ np.array([[1, 0, 0, 0], [0, np.cos(tilt), -np.sin(tilt), 0],
                             [0, np.sin(tilt), np.cos(tilt), 0], [0, 0, 0, 1]])
    assert lps_order(tilted) == as_stored
    sagittal = np.array([[0, 0, -1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
    order = lps_order(sagittal)  # i runs posterior, j inferior, k towards the left
    assert order.source == (1, 2, 0) and order.flipped == (False, True, False)


@pytest.mark.parametrize("flips, swap", [((1, 2), False), ((0,), True), ((), True),
                                         ((0, 1, 2), False)])
def test_the_network_sees_the_same_anatomy_whatever_the_voxel_order(crop, flips, swap):
    """Residuals of the same blocks within 1e-5 (the inputs' gradient magnitudes round
    differently); offsets along the CT's own axes."""
    network, preset = _random(NetworkConfig(offsets=True)), load_preset("CT-Bone")
    twin = _reindexed(crop, flips, swap)
    blocks = torch.cartesian_prod(*(torch.arange(side // 2) for side in crop.shape))
    ours = block_residuals(network, crop, None, preset, blocks)
    theirs = block_residuals(network, twin, None, preset,
                             _blocks_in(blocks, crop.shape, flips, swap))
    offsets = SLICES["offsets"]
    rest = torch.ones(ours.shape[1], dtype=torch.bool)
    rest[offsets] = False
    assert torch.allclose(theirs[:, rest], ours[:, rest], rtol=0.0, atol=1e-5)
    by_dim = theirs[:, offsets].flip(-1)  # along the twin's k, j, i
    if swap:
        by_dim = by_dim[:, [0, 2, 1]]
    by_dim = by_dim * torch.tensor([-1.0 if dim in flips else 1.0 for dim in range(3)])
    assert torch.allclose(by_dim.flip(-1), ours[:, offsets], rtol=0.0, atol=1e-5)
    assert ours[:, offsets].abs().max() > 0.005 and ours[:, SLICES["sh"]].abs().max() > 0.005
