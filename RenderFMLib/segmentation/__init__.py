"""Segmentations: TotalSegmentator's classes, RenderFM's anatomical groups, and reading existing
segmentations (multilabel files, binary masks, per-class mask folders, Slicer .seg.nrrd)."""

from .classes import (
    GROUPS,
    class_names,
    group_indices,
    group_lookup,
    group_masks,
    group_of,
    label_of,
    labels_in_groups,
    look_colors,
)
from .readers import read_labels
from .threshold import THRESHOLD_LABELS, threshold_segmentation
from .totalseg import run_totalsegmentator, totalsegmentator_problem

__all__ = ["GROUPS", "THRESHOLD_LABELS", "class_names", "group_indices", "group_lookup",
           "group_masks", "group_of", "label_of", "labels_in_groups", "look_colors", "read_labels",
           "run_totalsegmentator", "threshold_segmentation", "totalsegmentator_problem"]
