"""The pure tensor step from a CT on the device to Gaussians: inputs, AGP, residual, SixDGaussians.

prepare() (api.py) reads files and then calls build_gaussians; fine-tuning and training call it on
volumes they already hold. A zero (or absent) residual gives exactly AGP.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .channels import NUM_CHANNELS, combine
from .errors import RenderFMError
from .gaussians import SixDGaussians
from .network.inputs import gradient_ras, input_channels
from .priming import MIN_OPACITY, block_centres, prime
from .segmentation.classes import group_of, labels_in_groups
from .segmentation.looks import label_colors
from .transfer import Preset
from .volume import Volume


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
    gradient = gradient_ras(volume)
    inputs = input_channels(volume, preset, labels, gradient)
    keep = _kept_labels(labels, groups, keep_labels)
    colors = label_colors(int(labels.array.max())) if group_colors and labels is not None else None
    primed = prime(volume, preset, inputs, gradient, labels, keep, colors)
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


def _kept_labels(labels: Volume | None, groups: list[str] | None,
                 keep_labels: Iterable[int] | None) -> set[int] | None:
    """The labels whose blocks get Gaussians (None: all): keep_labels within the groups."""
    keep = set(keep_labels) if keep_labels is not None else None
    if groups is None:
        return keep
    assert labels is not None  # checked_groups: groups need a segmentation
    in_groups = {label for label in torch.unique(labels.array).tolist()
                 if label and group_of(label) in groups}
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
