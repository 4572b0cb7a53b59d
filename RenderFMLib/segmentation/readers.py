"""Existing segmentations as one label map in TotalSegmentator's `total` numbering.

read_labels reads, onto a reference CT's grid:
- a multilabel file (NIfTI, NRRD, MHA...) whose values are TotalSegmentator labels;
- a plain binary mask (values exactly {0, 1}), as label 255 'foreground';
- a folder of per-class masks as TotalSegmentator writes them without --ml (`liver.nii.gz`...);
- a 3D Slicer segmentation (`.seg.nrrd`, read with the `slicerio` package), segments matched to
  classes by name.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import RenderFMWarning, SegmentationError, VolumeError
from ..volume import LPS_TO_RAS, Volume, align_labels, read_label_map
from .classes import class_names, label_of

FOREGROUND = 255
"""Label of a plain binary mask's 1s (group 'other')."""
FIRST_UNMATCHED = 1001
"""Slicer segments whose names match no class get FIRST_UNMATCHED, FIRST_UNMATCHED + 1, ..."""
MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
"""Files of a per-class mask folder; other files (e.g. statistics.json) are ignored."""


def read_labels(path: str | Path, reference: Volume, binary: bool | None = None) -> Volume:
    """A segmentation as an int64 label map on the reference CT's grid.

    path: a multilabel file, a binary mask, a folder of per-class masks or a Slicer .seg.nrrd.
    Grids other than the CT's are resampled (nearest neighbour, with a RenderFMWarning) when they
    overlap it; VolumeError when they do not, or when a file is not a readable 3D label image.

    binary (files only): None reads a file holding exactly the values {0, 1} as a plain binary
    mask, i.e. label 255 'foreground', with a warning. A TotalSegmentator map that holds only
    label 1 (the spleen) looks the same: pass binary=False to read it as labels. binary=True
    reads every non-zero voxel as foreground, whatever its value.

    Folder: every `<class name>.nii.gz` (.nii, .nrrd) file must be a binary mask named after a
    class (SegmentationError naming the file otherwise; other files are ignored). Where masks
    overlap, the later class in TotalSegmentator's order (the higher label) overwrites the
    earlier; a warning gives the number of such voxels. Slicer: segments are matched to classes
    by name (case, spaces and underscores ignored) or by their terminology; unmatched ones get
    labels 1001, 1002... (group 'other') with a warning; a later segment overwrites an earlier.

    Raises SegmentationError naming the path for input that cannot be a segmentation.
    """
    path = Path(path)
    if not path.exists():
        raise SegmentationError(f"segmentation {path} does not exist")
    if path.is_dir():
        return align_labels(_read_mask_folder(path), reference, str(path))
    if _is_slicer_segmentation(path):
        return align_labels(_read_slicer(path), reference, str(path))
    labels = read_label_map(path)
    values = torch.unique(labels.array)
    is_binary = binary if binary is not None else bool(values.tolist() == [0, 1])
    if is_binary:
        if binary is None:
            warnings.warn(
                f"{path} holds only the values 0 and 1, so it was read as a plain binary mask "
                f"(label {FOREGROUND}, 'foreground'); pass binary=False if it is a "
                "TotalSegmentator map holding only the spleen (label 1)",
                RenderFMWarning,
                stacklevel=2,
            )
        labels = Volume((labels.array != 0).long() * FOREGROUND, labels.ijk_to_ras)
    else:
        unknown = sorted(set(values.tolist()) - set(class_names()) - {0})
        if unknown:
            warnings.warn(
                f"{path} holds labels outside TotalSegmentator's 'total' class map "
                f"({short_list(unknown)}); they are shown in the group 'other'",
                RenderFMWarning,
                stacklevel=2,
            )
    return align_labels(labels, reference, str(path))


def short_list(items: list, limit: int = 10) -> str:
    """The first `limit` items, comma-separated, and how many more there are."""
    text = ", ".join(str(item) for item in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _mask_class_name(file: Path) -> str | None:
    """The class name part of a mask file's name, or None if it is not a mask file."""
    lower = file.name.lower()
    suffix = next((s for s in MASK_SUFFIXES if lower.endswith(s)), None)
    if suffix is None or file.name.startswith(".") or not file.is_file():
        return None
    return file.name[: -len(suffix)]


def _read_mask_folder(folder: Path) -> Volume:
    """Per-class binary masks combined into one map on the first mask's grid.

    Masks are painted in increasing label order, so where masks overlap the class with the higher
    label wins (a warning gives the number of such voxels).
    """
    masks = []
    for file in sorted(folder.iterdir()):
        name = _mask_class_name(file)
        if name is None:
            continue
        try:
            masks.append((label_of(name), file))
        except SegmentationError as error:
            raise SegmentationError(
                f"{file} in the mask folder is not named after a class: {error}"
            ) from None
    if not masks:
        raise SegmentationError(
            f"{folder} holds no masks (expected files such as liver.nii.gz, one per class)"
        )
    combined: Volume | None = None
    overlap = 0
    for label, file in sorted(masks):
        mask = read_label_map(file)
        values = torch.unique(mask.array).tolist()
        if not set(values) <= {0, 1}:
            raise SegmentationError(
                f"{file} is not a binary mask (values {short_list(values)}); a mask folder "
                "needs one 0/1 file per class"
            )
        if combined is None:
            combined = Volume(torch.zeros_like(mask.array), mask.ijk_to_ras)
        else:
            mask = align_labels(mask, combined, str(file))
        inside = mask.array != 0
        taken = (combined.array != 0) & (combined.array != label)
        overlap += int(torch.count_nonzero(inside & taken))
        combined.array[inside] = label
    if overlap:
        warnings.warn(
            f"masks in {folder} overlap in {overlap} voxels; there the class with the higher "
            "label (the later one in TotalSegmentator's order) was kept",
            RenderFMWarning,
            stacklevel=3,
        )
    assert combined is not None  # masks is not empty
    return combined


def _is_slicer_segmentation(path: Path) -> bool:
    """A .seg.nrrd file, or a .nrrd file whose header describes Slicer segments."""
    lower = path.name.lower()
    if lower.endswith(".seg.nrrd"):
        return True
    if not lower.endswith(".nrrd"):
        return False
    with open(path, "rb") as file:
        header = file.read(65536).split(b"\n\n", 1)[0]  # the header ends at the first blank line
    return b"\nSegment0_" in header


def normalized_name(name: str) -> str:
    """Lower case, runs of spaces, underscores and hyphens as one underscore."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower()).strip("_")


def segment_label(segment: dict, by_name: dict[str, int]) -> int | None:
    """The class label of a Slicer segment: by its name, else by its terminology's type and
    modifier meanings read as a class name (e.g. 'Kidney' + 'Right' -> kidney_right)."""
    label = by_name.get(normalized_name(str(segment.get("name", ""))))
    terminology = segment.get("terminology") or {}
    if label is None and "type" in terminology:
        words = [terminology["type"][-1], (terminology.get("typeModifier") or ["", "", ""])[-1]]
        label = by_name.get(normalized_name(" ".join(words)))
    return label


def _read_slicer(path: Path) -> Volume:
    """A Slicer .seg.nrrd (3D, or 4D with one layer per group of overlapping segments)."""
    try:
        import slicerio
    except ImportError:
        raise SegmentationError(
            f"reading the Slicer segmentation {path} needs the slicerio package "
            "(pip install slicerio)"
        ) from None
    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as error:  # slicerio and pynrrd raise assorted errors for bad files
        raise SegmentationError(
            f"{path} is not a Slicer segmentation slicerio can read ({error})"
        ) from None
    voxels = np.asarray(segmentation.get("voxels"))
    segments = segmentation.get("segments") or []
    if voxels.ndim not in (3, 4) or not segments:
        raise SegmentationError(
            f"{path} holds no usable segments ({len(segments)} segments, voxel array of "
            f"{voxels.ndim} dimensions; need 3, or 4 for layers)"
        )
    layers = voxels if voxels.ndim == 4 else voxels[np.newaxis]  # [layer, i, j, k]
    by_name = {normalized_name(name): label for label, name in class_names().items()}
    labels = np.zeros(layers.shape[1:], dtype=np.int64)
    unmatched: list[str] = []
    overlap = 0
    for segment in segments:
        label = segment_label(segment, by_name)
        if label is None:
            label = FIRST_UNMATCHED + len(unmatched)
            unmatched.append(f"{segment.get('name', segment.get('id'))!r} -> {label}")
        layer = int(segment.get("layer", 0))
        if not 0 <= layer < layers.shape[0]:
            raise SegmentationError(
                f"{path}: segment {segment.get('name')!r} is in a missing layer {layer}"
            )
        inside = layers[layer] == int(segment.get("labelValue", 1))
        overlap += int(np.count_nonzero(inside & (labels != 0) & (labels != label)))
        labels[inside] = label
    if unmatched:
        warnings.warn(
            f"segments of {path} that match no TotalSegmentator class were given their own labels "
            f"in the group 'other': {short_list(unmatched)}",
            RenderFMWarning,
            stacklevel=3,
        )
    if overlap:
        warnings.warn(
            f"segments of {path} overlap in {overlap} voxels; there the later segment was kept",
            RenderFMWarning,
            stacklevel=3,
        )
    ijk_to_ras = LPS_TO_RAS @ np.asarray(segmentation["ijkToLPS"], dtype=np.float64)
    array = np.ascontiguousarray(labels.transpose(2, 1, 0))  # slicerio's [i, j, k] -> [K, J, I]
    try:
        return Volume(torch.from_numpy(array), ijk_to_ras)
    except VolumeError as error:
        raise SegmentationError(f"{path} has an unusable geometry ({error})") from None
