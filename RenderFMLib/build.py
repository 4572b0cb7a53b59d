"""The pure tensor step from a CT on the device to Gaussians: inputs, AGP, residual, SixDGaussians.

prepare() (api.py) reads files and then calls build_gaussians; fine-tuning and training call it on
volumes they already hold. A zero (or absent) residual gives exactly AGP.

AGP works on slabs of block rows (about SLAB_VOXELS voxels each, with one slice more on each side
for the gradient), so its memory follows the slab, not the CT: a 512 x 512 x 600 CT primes in
the memory of a few dozen slices, and gives the same Gaussians as priming it whole.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from .channels import NUM_CHANNELS, combine
from .errors import RenderFMError, SegmentationError
from .gaussians import SixDGaussians
from .memory import check_headroom
from .network.inputs import gradient_ras, input_channels
from .priming import MIN_OPACITY, Primed, block_centres, prime
from .segmentation.classes import group_of, labels_in_groups
from .transfer import Preset
from .volume import Volume

SLAB_VOXELS = 4_000_000  # voxels primed at once (a few hundred MB of working memory)


def build_gaussians(
    volume: Volume,
    labels: Volume | None,
    preset: Preset,
    residual: torch.Tensor | None = None,
    *,
    groups: Iterable[str] | None = None,
    group_colors: bool = False,
    keep_labels: Iterable[int] | None = None,
) -> SixDGaussians:
    """Gaussians of `volume` (float32 HU, RAS mm) with `labels` on its grid (or None).

    residual: [37, K // 2, J // 2, I // 2] per-block channel residuals on the half-resolution grid
    (the network's output; None = zero = AGP). groups, group_colors, keep_labels as in prepare().
    RenderFMError when nothing is visible.
    """
    groups = checked_groups(labels is not None, groups, keep_labels, group_colors)
    keep = _kept_labels(labels, groups, keep_labels)
    primed = _prime_in_slabs(volume, labels, preset, keep, group_colors and labels is not None)
    if len(primed.labels) == 0:
        where = (f" within groups {', '.join(groups)}" if groups is not None else
                 " within the chosen labels" if keep is not None else "")
        raise RenderFMError(
            f"preset '{preset.name}' makes nothing in this CT visible{where} (no 2x2x2 block "
            f"reaches opacity {MIN_OPACITY}); choose another preset (see `renderfm presets`)")
    params = combine(primed.base, _gather(residual, primed.index, volume.shape))
    params["means"] = block_centres(volume, primed.index)
    return SixDGaussians(params, primed.labels, volume.ijk_to_ras, volume.shape, preset.to_dict())


def checked_groups(segmented: bool, groups: Iterable[str] | str | None,
                   keep_labels: Iterable[int] | None, group_colors: bool) -> list[str] | None:
    """groups as a list (a single name allowed), checked before any work: RenderFMError when
    groups, labels or group colours are asked for without a segmentation, SegmentationError for
    an unknown group."""
    if not segmented and (keep_labels is not None or groups is not None or group_colors):
        raise RenderFMError("keeping groups or labels, or colouring groups, needs a segmentation")
    if groups is None:
        return None
    groups = [groups] if isinstance(groups, str) else list(groups)
    labels_in_groups(groups)
    return groups


def _prime_in_slabs(volume: Volume, labels: Volume | None, preset: Preset,
                    keep: set[int] | None, group_colors: bool) -> Primed:
    """prime() over slabs of block rows, joined: the same Gaussians as priming the whole CT."""
    block_rows = volume.shape[0] // 2
    rows_per_slab = max(1, SLAB_VOXELS // (2 * volume.shape[1] * volume.shape[2]))
    slab_voxels = min(rows_per_slab * 2, volume.shape[0]) * volume.shape[1] * volume.shape[2]
    parts: list[Primed] = []
    for first in range(0, block_rows, rows_per_slab):
        check_headroom(slab_voxels, first / block_rows, sum(len(part.labels) for part in parts))
        parts.append(_prime_slab(volume, labels, preset, keep, group_colors, first,
                                 first + rows_per_slab))
    if not parts:  # fewer than two slices: no block
        device = volume.array.device
        return Primed(torch.zeros(0, NUM_CHANNELS, device=device),
                      torch.zeros(0, 3, dtype=torch.int64, device=device),
                      torch.zeros(0, dtype=torch.int64, device=device))
    return Primed(torch.cat([part.base for part in parts]),
                  torch.cat([part.index for part in parts]),
                  torch.cat([part.labels for part in parts]))


def _prime_slab(volume: Volume, labels: Volume | None, preset: Preset, keep: set[int] | None,
                group_colors: bool, first_row: int, end_row: int) -> Primed:
    """AGP of block rows first_row..end_row - 1 (k), with their indices on the whole grid."""
    first, end = 2 * first_row, min(2 * end_row, volume.shape[0] // 2 * 2)  # voxel slices
    low, high = max(first - 1, 0), min(end + 1, volume.shape[0])  # and one more each side
    gradient = gradient_ras(_slices(volume, low, high))[:, first - low:end - low]
    slab = _slices(volume, first, end)
    slab_labels = None if labels is None else _slices(labels, first, end)
    inputs = input_channels(slab, preset, slab_labels, gradient)
    primed = prime(slab, preset, inputs, gradient, slab_labels, keep, group_colors)
    shift = torch.tensor([first_row, 0, 0], device=primed.index.device)
    return Primed(primed.base, primed.index + shift, primed.labels)


def _slices(volume: Volume, first: int, end: int) -> Volume:
    """Voxel slices first..end - 1 (k) of volume as a Volume of their own (a view, no copy)."""
    shift = np.eye(4)
    shift[2, 3] = first
    return Volume(volume.array[first:end], volume.ijk_to_ras @ shift)


def _kept_labels(labels: Volume | None, groups: list[str] | None,
                 keep_labels: Iterable[int] | None) -> set[int] | None:
    """The labels whose blocks get Gaussians (None: all): keep_labels within the groups."""
    keep = set(keep_labels) if keep_labels is not None else None
    if groups is None:
        return keep
    assert labels is not None  # checked_groups: groups need a segmentation
    present: set[int] = set()
    rows = max(1, SLAB_VOXELS // (labels.shape[1] * labels.shape[2]))
    for first in range(0, labels.shape[0], rows):  # slab by slab: unique() sorts a copy
        present.update(torch.unique(labels.array[first:first + rows]).tolist())
    in_groups = {label for label in present if label and group_of(label) in groups}
    if not in_groups:
        found = sorted({group_of(label) for label in present if label})
        raise SegmentationError(
            f"the segmentation labels nothing in groups {', '.join(groups)}: "
            + (f"it labels only {', '.join(found)}" if found else "every voxel is 0 (empty)"))
    return in_groups if keep is None else in_groups & keep


def _gather(residual: torch.Tensor | None, index: torch.Tensor,
            shape: tuple[int, int, int]) -> torch.Tensor | None:
    """The residual [N, 37] of the blocks at index [N, 3] (k, j, i), from the grid residual."""
    if residual is None:
        return None
    grid = (NUM_CHANNELS, *(side // 2 for side in shape))
    if tuple(residual.shape) != grid:
        raise ValueError(f"residual must be {list(grid)} (channels, half-resolution grid), not "
                         f"{list(residual.shape)}")
    k, j, i = index.unbind(-1)
    return residual[:, k, j, i].T.to(torch.float32)
