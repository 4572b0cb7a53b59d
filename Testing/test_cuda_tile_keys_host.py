"""tile_keys.cu's pipeline (tile_keys.cuh's math) built by g++ vs the PyTorch reference's tile_keys.

Testing/cuda_host/tile_keys_harness.cpp runs the kernels' steps on the CPU: counts per Gaussian,
an inclusive scan, keys written at each Gaussian's offset, a stable sort, per-tile ranges by
binary search. Integer work on the same float inputs: gaussian_ids and tile_ranges must equal
the reference's exactly, ties in depth (where only a stable sort keeps the reference's order)
and empty tiles included.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cuda_host import host_harness
from cuda_host.scenes import HEIGHT, WIDTH, camera, stage2_inputs, synthetic_footprints

from RenderFMLib.render.reference import slice_project, tile_keys
from RenderFMLib.render.reference.tile_keys import TILE_SIZE, tile_grid


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return host_harness.build("tile_keys_harness", tmp_path_factory.mktemp("tile_keys"))


def _scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
    """slice_project's means2d, radii and depths for scenes.stage2_inputs (random and degenerate
    Gaussians, NaN and Inf among them), at WIDTH x HEIGHT."""
    inputs, _, _ = stage2_inputs(seed=0)
    w2c, intrinsics, centre = (x.to(torch.float32) for x in camera())
    names = ("means", "dir_means", "s_c", "gains", "s_dd_inv", "opacity_logits", "rgb", "sh",
             "specular_sh")
    out = slice_project(*(torch.from_numpy(inputs[k]) for k in names), w2c, intrinsics, centre,
                        WIDTH, HEIGHT)
    return out["means2d"], out["radii"], out["depths"], WIDTH, HEIGHT


CASES = {
    "scene": _scene,
    "ties": lambda: synthetic_footprints(3000, 100, 75, seed=1),
    "one_tile": lambda: synthetic_footprints(500, 16, 16, seed=2),
    "tiny_image": lambda: synthetic_footprints(300, 3, 1, seed=3),
    "wide": lambda: synthetic_footprints(2000, 1000, 40, seed=4),
    "empty": lambda: synthetic_footprints(0, 33, 17, seed=5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tile_keys_host_vs_torch(harness, tmp_path, name):
    means2d, radii, depths, width, height = CASES[name]()
    ids, ranges = tile_keys(means2d, radii, depths, width, height, TILE_SIZE)
    tiles_x, tiles_y = tile_grid(width, height, TILE_SIZE)
    host = host_harness.run(
        harness, tmp_path,
        [(np.array([len(radii), width, height]), np.int32), (means2d.numpy(), np.float32),
         (radii.numpy(), np.int32), (depths.numpy(), np.float32)],
        [("m", np.int64, (1,)), ("ids", np.int64, (len(ids),)),
         ("ranges", np.int64, (tiles_x * tiles_y, 2))])
    assert host["m"][0] == len(ids)
    np.testing.assert_array_equal(host["ids"], ids.numpy())
    np.testing.assert_array_equal(host["ranges"], ranges.numpy())
    if name != "empty":
        counts = ranges[:, 1] - ranges[:, 0]
        assert (counts > 0).any() and len(ids) > len(radii) // 4
    if name == "ties":  # equal keys do occur, so the order among them is tested
        keys = (ids.new_tensor(np.repeat(np.arange(tiles_x * tiles_y), counts.numpy())) << 32
                | depths[ids].view(torch.int32).to(torch.int64))
        assert (keys[1:] == keys[:-1]).sum() > 100
