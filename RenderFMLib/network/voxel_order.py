"""The voxel order the network reads a CT in: DICOM's LPS order (i towards the patient's left, j
towards the back, k towards the head), the order of the CTs it is trained on.

The network's input channels are scalars (HU, mask, colour, opacity), so where a CT's voxels
point in the patient reaches it only through the order of the array. What it predicts in patient
RAS (shading, direction means, position-direction correlations) it learns for that order: a CT
stored otherwise (a NIfTI written in RAS order, as TotalSegmentator's sample is: i towards the
right, j to the front) would get them mirrored. So the input box is flipped and its axes
permuted into LPS order before the network and the residuals are put back after it; the offsets
(channels.py: along the CT's own i, j, k, in voxels) are permuted and negated with their axes.
Boxes have even sides, so a flip keeps the 2x2x2 blocks whole. Oblique CTs take the nearest
order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from ..channels import SLICES

# For each array dim of the LPS order (k, j, i): the RAS axis it runs along (x = 0, y = 1,
# z = 2) and its sign there (i runs towards -x, j towards -y, k towards +z).
LPS_AXES = (2, 1, 0)
LPS_SIGNS = (1.0, -1.0, -1.0)


@dataclass(frozen=True)
class VoxelOrder:
    """source[c]: the array dim (0 = k, 1 = j, 2 = i) that LPS dim c takes its voxels from;
    flipped[d]: whether array dim d runs against its LPS dim."""

    source: tuple[int, ...]
    flipped: tuple[bool, ...]


def lps_order(ijk_to_ras: np.ndarray) -> VoxelOrder:
    """How to read a CT with this IJK->RAS matrix in LPS order: the assignment of array dims to
    LPS dims that best matches their directions (the largest summed |cosine|)."""
    directions = np.asarray(ijk_to_ras, dtype=np.float64)[:3, :3]
    # column 2 - d of the matrix is the direction of array dim d (the matrix's columns are i, j, k)
    columns = [directions[:, 2 - d] / np.linalg.norm(directions[:, 2 - d]) for d in range(3)]
    source = max(itertools.permutations(range(3)),
                 key=lambda order: sum(abs(columns[d][LPS_AXES[c]]) for c, d in enumerate(order)))
    flipped = [False] * 3
    for c, d in enumerate(source):
        flipped[d] = bool(columns[d][LPS_AXES[c]] * LPS_SIGNS[c] < 0)
    return VoxelOrder(tuple(source), tuple(flipped))


def to_lps(inputs: torch.Tensor, order: VoxelOrder) -> torch.Tensor:
    """[C, K, J, I] in the CT's order -> [C, ...] in LPS order."""
    flips = [1 + d for d in range(3) if order.flipped[d]]
    moved = inputs.flip(flips) if flips else inputs
    return moved.permute(0, *(1 + d for d in order.source))


def from_lps(residuals: torch.Tensor, order: VoxelOrder) -> torch.Tensor:
    """[49, ...] on LPS-ordered blocks -> [49, Kb, Jb, Ib] on the CT's blocks, the offsets along
    the CT's own axes."""
    position = [order.source.index(d) for d in range(3)]  # LPS dim of each array dim
    moved = residuals.permute(0, *(1 + c for c in position))
    flips = [1 + d for d in range(3) if order.flipped[d]]
    moved = moved.flip(flips) if flips else moved
    offsets = SLICES["offsets"]  # channels along i, j, k: array dims 2, 1, 0
    along = [offsets.start + 2 - position[2 - a] for a in range(3)]
    signs = torch.tensor([-1.0 if order.flipped[2 - a] else 1.0 for a in range(3)],
                         dtype=moved.dtype, device=moved.device)
    return torch.cat([moved[:offsets.start], moved[along] * signs[:, None, None, None],
                      moved[offsets.stop:]])
