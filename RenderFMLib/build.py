"""The pure tensor step from a CT on the device to Gaussians: inputs, AGP, residual, SixDGaussians.

prepare() (api.py) reads files and then calls build_gaussians; fine-tuning and training call it on
volumes they already hold. A zero (or absent) residual gives exactly AGP.

AGP works on slabs of block rows (about SLAB_VOXELS voxels each, with one slice more on each side
for the gradient), so its memory follows the slab, not the CT: a 512 x 512 x 600 CT primes in
the memory of a few dozen slices, and gives the same Gaussians as priming it whole.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .channels import NUM_CHANNELS, SLICES, combine
from .errors import RenderFMError, SegmentationError
from .gaussians import SixDGaussians
from .memory import check_finish, check_headroom
from .network.inputs import gradient_ras, input_channels
from .network.model import RenderFMNetwork
from .network.predict import block_residuals
from .priming import MIN_OPACITY, Primed, gaussian_means, prime
from .segmentation.classes import group_of, labels_in_groups
from .segmentation.looks import label_colors
from .transfer import Preset
from .volume import Volume

SLAB_VOXELS = 4_000_000  # voxels primed at once (a few hundred MB of working memory)


def build_gaussians(
    volume: Volume,
    labels: Volume | None,
    preset: Preset,
    residual: torch.Tensor | None = None,
    *,
    network: RenderFMNetwork | None = None,
    groups: Iterable[str] | None = None,
    group_colors: bool = False,
    keep_labels: Iterable[int] | None = None,
    partial_blocks: bool | None = None,
) -> SixDGaussians:
    """Gaussians of `volume` (float32 HU, RAS mm) with `labels` on its grid (or None).

    residual: [40, K // 2, J // 2, I // 2] per-block channel residuals on the half-resolution grid
    (None = zero = AGP); network: a RenderFMNetwork whose residuals are added (slab by slab, on
    the kept blocks only), instead of `residual`. groups, group_colors, keep_labels as in
    prepare(). partial_blocks: AGP keeps its partial blocks too (priming.py); None: as the
    network was trained (its config), else not. RenderFMError when nothing is visible.
    """
    if network is not None and residual is not None:
        raise ValueError("build_gaussians takes a residual or a network, not both")
    groups = checked_groups(labels is not None, groups, keep_labels, group_colors)
    keep = _kept_labels(labels, groups, keep_labels)
    if partial_blocks is None:
        partial_blocks = network is not None and network.config.partial_blocks
    primed, predicted = _prime_in_slabs(volume, labels, preset, keep,
                                        group_colors and labels is not None, network,
                                        partial_blocks)
    if len(primed.labels) == 0:
        where = (f" within groups {', '.join(groups)}" if groups is not None else
                 " within the chosen labels" if keep is not None else "")
        raise RenderFMError(
            f"preset '{preset.name}' makes nothing in this CT visible{where} (no 2x2x2 block "
            f"reaches opacity {MIN_OPACITY}); choose another preset (see `renderfm presets`)")
    if network is None:
        residual = _gather(residual, primed.index, volume.shape)
    else:
        residual = _without_colour_where_looked(predicted, primed.labels, group_colors)
    params = combine(primed.base, residual)
    params["means"] = gaussian_means(volume, primed.index, params.pop("offsets"))
    return SixDGaussians(params, primed.labels, volume.ijk_to_ras, volume.shape, preset.to_dict())


def prime_volume(volume: Volume, labels: Volume | None, preset: Preset,
                 partial_blocks: bool = False) -> Primed:
    """AGP of the whole volume (slab by slab), no groups: what training adds residuals to;
    partial_blocks as in build_gaussians."""
    return _prime_in_slabs(volume, labels, preset, None, False, None, partial_blocks)[0]


def _without_colour_where_looked(residual: torch.Tensor | None, labels: torch.Tensor,
                                 group_colors: bool) -> torch.Tensor | None:
    """The network's residual, with no colour change on blocks that show their group's look
    (the look is the user's choice; the network learnt the preset's colours)."""
    if residual is None or not group_colors:
        return residual
    looked = ~label_colors(labels).isnan().any(-1)
    residual = residual.clone()
    residual[looked, SLICES["rgb"]] = 0.0
    return residual


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
                    keep: set[int] | None, group_colors: bool,
                    network: RenderFMNetwork | None,
                    partial_blocks: bool) -> tuple[Primed, torch.Tensor | None]:
    """prime() over slabs of block rows, joined: the same Gaussians as priming the whole CT; with
    a network, its residuals [N, 49] of those Gaussians (else None). A network without a halo
    (unet) runs on the whole CT in one slab."""
    block_rows = volume.shape[0] // 2
    rows_per_slab = max(1, SLAB_VOXELS // (2 * volume.shape[1] * volume.shape[2]))
    if network is not None and network.halo_voxels() is None:
        rows_per_slab = max(block_rows, 1)
    slab_voxels = min(rows_per_slab * 2, volume.shape[0]) * volume.shape[1] * volume.shape[2]
    parts: list[Primed] = []
    residuals: list[torch.Tensor] = []
    for first in range(0, block_rows, rows_per_slab):
        check_headroom(slab_voxels, first / block_rows, sum(len(part.labels) for part in parts))
        end = min(first + rows_per_slab, block_rows)
        parts.append(_prime_slab(volume, labels, preset, keep, group_colors, partial_blocks,
                                 first, end))
        if network is not None:
            with torch.no_grad():
                residuals.append(block_residuals(network, volume, labels, preset,
                                                 parts[-1].index, (first, end)))
    if not parts:  # fewer than two slices: no block
        device = volume.array.device
        return Primed(torch.zeros(0, NUM_CHANNELS, device=device),
                      torch.zeros(0, 3, dtype=torch.int64, device=device),
                      torch.zeros(0, dtype=torch.int64, device=device)), None
    check_finish(sum(len(part.labels) for part in parts), network is not None)
    primed = Primed(torch.cat([part.base for part in parts]),
                    torch.cat([part.index for part in parts]),
                    torch.cat([part.labels for part in parts]))
    return primed, (torch.cat(residuals).to(primed.base.device) if residuals else None)


def _prime_slab(volume: Volume, labels: Volume | None, preset: Preset, keep: set[int] | None,
                group_colors: bool, partial_blocks: bool, first_row: int, end_row: int
                ) -> Primed:
    """AGP of block rows first_row..end_row - 1 (k), with their indices on the whole grid."""
    first, end = 2 * first_row, 2 * end_row  # voxel slices
    low, high = max(first - 1, 0), min(end + 1, volume.shape[0])  # and one more each side
    gradient = gradient_ras(volume.slab(low, high))[:, first - low:end - low]
    slab = volume.slab(first, end)
    slab_labels = None if labels is None else labels.slab(first, end)
    inputs = input_channels(slab, preset, slab_labels, gradient)
    primed = prime(slab, preset, inputs, gradient, slab_labels, keep, group_colors,
                   partial_blocks)
    shift = torch.tensor([first_row, 0, 0], device=primed.index.device)
    return Primed(primed.base, primed.index + shift, primed.labels)


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
    """The residual [N, 49] of the blocks at index [N, 3] (k, j, i), from the grid residual."""
    if residual is None:
        return None
    grid = (NUM_CHANNELS, *(side // 2 for side in shape))
    if tuple(residual.shape) != grid:
        raise ValueError(f"residual must be {list(grid)} (channels, half-resolution grid), not "
                         f"{list(residual.shape)}")
    k, j, i = index.unbind(-1)
    return residual[:, k, j, i].T.to(torch.float32)
