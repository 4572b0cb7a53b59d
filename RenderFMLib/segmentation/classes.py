"""TotalSegmentator's `total` classes and RenderFM's anatomical groups, from one table.

Resources/segmentation/total_classes.json maps every label of TotalSegmentator's v2 `total` class
map (1..117, names exactly as TotalSegmentator writes them) and RenderFM's own labels (201..204
for threshold segmentations, 255 for a plain binary mask's foreground) to one of seven groups,
and gives each group a look (an RGB colour, or null to keep the preset's colour). Label 0 is
background and belongs to no group; any other label missing from the table counts as 'other'.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable

import numpy as np
import torch

from ..errors import SegmentationError
from ..resources import resource_path

_TABLE = ("segmentation", "total_classes.json")
OTHER = "other"


@functools.cache
def _table() -> dict:
    """The parsed table, checked once (a broken table is an installation problem)."""
    path = resource_path(*_TABLE)
    with open(path, encoding="utf-8") as file:
        table = json.load(file)
    groups = [group["name"] for group in table["groups"]]
    bad = [c for c in table["classes"] if c["group"] not in groups or c["label"] <= 0]
    labels = [c["label"] for c in table["classes"]]
    if bad or OTHER not in groups or len(set(labels)) != len(labels):
        raise RuntimeError(f"{path} is malformed (bad classes: {bad[:3]}); reinstall RenderFM")
    return table


GROUPS: tuple[str, ...] = tuple(group["name"] for group in _table()["groups"])
"""The group names, in the table's order (group_lookup's indices refer to it)."""


@functools.cache
def _names() -> dict[int, str]:
    return {c["label"]: c["name"] for c in _table()["classes"]}


@functools.cache
def _groups() -> dict[int, str]:
    return {c["label"]: c["group"] for c in _table()["classes"]}


@functools.cache
def _labels_by_lower_name() -> dict[str, int]:
    return {name.lower(): label for label, name in _names().items()}


def class_names() -> dict[int, str]:
    """Label -> class name for every label in the table (a fresh dict the caller may change)."""
    return dict(_names())


def label_of(name: str) -> int:
    """The label of a class name, matched exactly or case-insensitively.

    Raises SegmentationError naming the closest class names when there is no such class.
    """
    label = _labels_by_lower_name().get(str(name).strip().lower())
    if label is not None:
        return label
    close = difflib.get_close_matches(str(name).lower(), list(_labels_by_lower_name()), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SegmentationError(
        f"{name!r} is not a TotalSegmentator 'total' class (or RenderFM label) name{hint}"
    )


def group_of(label: int) -> str:
    """The group of a label; 'other' for labels not in the table (label 0 is background)."""
    return _groups().get(int(label), OTHER)


def labels_in_groups(groups: Iterable[str]) -> set[int]:
    """The table's labels in the given groups (one name or several).

    Labels outside the table (e.g. 1001.. for unmatched Slicer segments) belong to 'other' in
    group_of, group_lookup and group_masks but cannot be listed here.
    """
    wanted = {groups} if isinstance(groups, str) else set(groups)
    unknown = sorted(str(group) for group in wanted - set(GROUPS))
    if unknown:
        raise SegmentationError(
            f"unknown anatomical group(s) {', '.join(unknown)}; the groups are {', '.join(GROUPS)}"
        )
    return {label for label, group in _groups().items() if group in wanted}


@functools.cache
def _lookup(max_label: int) -> np.ndarray:
    lookup = np.full(max_label + 1, GROUPS.index(OTHER), dtype=np.int64)
    lookup[0] = -1
    for label, group in _groups().items():
        if label <= max_label:
            lookup[label] = GROUPS.index(group)
    lookup.flags.writeable = False
    return lookup


def group_lookup(max_label: int) -> torch.Tensor:
    """[max_label + 1] int64: the index into GROUPS of each label 0..max_label.

    Label 0 (background) maps to -1; labels not in the table map to the index of 'other'.
    The table grows with max_label: for labels of unknown range, use group_indices.
    """
    if int(max_label) < 0:
        raise SegmentationError(f"the largest label must be >= 0, got {max_label}")
    return torch.from_numpy(_lookup(int(max_label)).copy())


@functools.cache
def _known_labels() -> tuple[torch.Tensor, torch.Tensor]:
    """(the table's labels, ascending; the index into GROUPS of each), int64."""
    labels = sorted(_groups())
    return (torch.tensor(labels, dtype=torch.int64),
            torch.tensor([GROUPS.index(_groups()[label]) for label in labels]))


def group_indices(labels: torch.Tensor) -> torch.Tensor:
    """The index into GROUPS of each label in an integer tensor (labels' shape and device, int64):
    -1 for 0 (background), 'other' for labels not in the table. Looked up in the table's own
    labels, so a huge label (4e8) costs no table of that size."""
    known, groups = (part.to(labels.device) for part in _known_labels())
    labels = labels.long().contiguous()  # searchsorted would copy a non-contiguous one anyway
    where = torch.searchsorted(known, labels).clamp_(max=len(known) - 1)
    index = torch.where(known[where] == labels, groups[where], GROUPS.index(OTHER))
    return index.masked_fill_(labels == 0, -1)


def group_masks(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """One bool mask per group (all of GROUPS, in order) of an integer label map.

    Masks have labels' shape and device; background (label 0) is in none of them.
    """
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise SegmentationError(f"a label map must hold integers, got {labels.dtype}")
    labels = labels.long()
    if labels.numel() and int(labels.min()) < 0:
        raise SegmentationError(f"a label map must hold labels >= 0, got {int(labels.min())}")
    index = group_indices(labels)
    return {group: index == i for i, group in enumerate(GROUPS)}


def look_colors() -> dict[str, tuple[float, float, float] | None]:
    """Group -> its look's RGB colour in 0..1, or None to keep the preset's colour."""
    return {
        group["name"]: None if (rgb := group["look"]) is None
        else (float(rgb[0]), float(rgb[1]), float(rgb[2]))
        for group in _table()["groups"]
    }
