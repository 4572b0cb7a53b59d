"""A network with spacing_input (network/model.py) reads the voxel spacing along its axes: the
same voxels on a coarser grid get other residuals (a network without it cannot tell them apart),
the spacing follows the LPS voxel order the network reads in, and a missing or bad spacing is
refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_network import _random
from test_voxel_order import _blocks_in, _reindexed

from RenderFMLib.channels import SLICES
from RenderFMLib.network.model import NetworkConfig
from RenderFMLib.network.predict import block_residuals, lps_spacing
from RenderFMLib.network.voxel_order import lps_order
from RenderFMLib.transfer import load_preset
from RenderFMLib.volume import Volume


@pytest.fixture(scope="module")
def crop(sample_ct) -> Volume:
    """40 x 48 x 36 voxels of the sample (3 mm, RAS order) made anisotropic: 4.5 mm along i,
    6 mm along k, so every axis has its own spacing."""
    shift = np.eye(4)
    shift[:3, 3] = (40, 24, 40)
    matrix = sample_ct.ijk_to_ras @ shift @ np.diag([1.5, 1.0, 2.0, 1.0])
    return Volume(sample_ct.array[40:80, 24:72, 40:76].contiguous(), matrix)


def _everything(volume: Volume) -> torch.Tensor:
    return torch.cartesian_prod(*(torch.arange(side // 2) for side in volume.shape))


def _rescaled(volume: Volume, factor: float) -> Volume:
    """The same voxels on a grid `factor` times coarser along every axis."""
    return Volume(volume.array, volume.ijk_to_ras @ np.diag([factor, factor, factor, 1.0]))


def test_a_spacing_input_network_tells_a_coarse_grid_from_a_fine_one(crop):
    """CT-Bone's opacity does not depend on the HU gradient, so on a grid twice as coarse the
    six input channels are the same: the network without spacing_input gives the same residuals
    bit for bit, the one with it others (by more than 1e-3)."""
    preset, blocks = load_preset("CT-Bone"), _everything(crop)
    coarse = _rescaled(crop, 2.0)
    plain = _random(NetworkConfig(offsets=True))
    assert torch.equal(block_residuals(plain, crop, None, preset, blocks),
                       block_residuals(plain, coarse, None, preset, blocks))
    reading = _random(NetworkConfig(offsets=True, spacing_input=True))
    difference = (block_residuals(reading, crop, None, preset, blocks)
                  - block_residuals(reading, coarse, None, preset, blocks)).abs().max()
    assert difference > 1e-3


def test_the_spacing_is_given_along_the_lps_ordered_axes():
    """A sagittal stack (i posterior, j inferior, k to the left) with 0.5, 0.7 and 3 mm voxels
    is read with k = its j (S), j = its i (P), i = its k (L)."""
    matrix = np.array([[0, 0, -3.0, 0], [-0.5, 0, 0, 0], [0, -0.7, 0, 0], [0, 0, 0, 1.0]])
    volume = Volume(torch.zeros(4, 4, 4), matrix)
    assert lps_spacing(volume, lps_order(matrix)) == pytest.approx((0.7, 0.5, 3.0))


@pytest.mark.parametrize("flips, swap", [((1, 2), False), ((0,), True), ((), True)])
def test_the_same_anisotropic_anatomy_gets_the_same_residuals_in_any_order(crop, flips, swap):
    """Stored flipped or with i and j swapped (4.5 and 3 mm), the blocks get the same residuals
    within 1e-5 (test_voxel_order's tolerance) but for the offsets, which follow the CT's axes
    (checked there): the spacing channels move with the axes."""
    network = _random(NetworkConfig(offsets=True, spacing_input=True))
    preset = load_preset("CT-Bone")
    twin = _reindexed(crop, flips, swap)
    blocks = _everything(crop)
    ours = block_residuals(network, crop, None, preset, blocks)
    theirs = block_residuals(network, twin, None, preset,
                             _blocks_in(blocks, crop.shape, flips, swap))
    rest = torch.ones(ours.shape[1], dtype=torch.bool)
    rest[SLICES["offsets"]] = False
    assert torch.allclose(theirs[:, rest], ours[:, rest], rtol=0.0, atol=1e-5)


@pytest.mark.parametrize("spacing", [None, (2.0, 2.0), (2.0, 0.0, 2.0), (2.0, float("nan"), 1.0)])
def test_a_spacing_input_network_refuses_a_missing_or_bad_spacing(spacing):
    network = _random(NetworkConfig(spacing_input=True))
    with pytest.raises(ValueError, match="voxel spacing along K, J, I"):
        network(torch.zeros(1, 6, 4, 4, 4), spacing)


def test_spacing_input_must_be_true_or_false():
    with pytest.raises(ValueError, match="spacing_input must be true or false"):
        NetworkConfig.from_dict({"spacing_input": "yes"})
