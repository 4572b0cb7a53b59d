"""Tests of RenderFMLib.segmentation.classes: the class/group table against TotalSegmentator's own
label table (the NIfTI header extension of its real outputs and its SNOMED mapping CSV), and the
group masks of the real segmentations against voxel counts taken independently with numpy."""

import csv
import json
import re

import nibabel as nib
import numpy as np
import pytest
import torch
from data_paths import SHARED_DATA as DATA  # noqa: E402

from RenderFMLib.errors import RenderFMError, SegmentationError
from RenderFMLib.resources import resource_path
from RenderFMLib.segmentation import (
    GROUPS,
    class_names,
    group_lookup,
    group_masks,
    group_of,
    label_of,
    labels_in_groups,
    look_colors,
)

TOTALSEG = DATA / "totalseg"
needs_data = pytest.mark.skipif(not TOTALSEG.is_dir(), reason=f"shared data not at {DATA}")
EXPECTED_GROUPS = ("skeleton", "organs", "heart_and_vessels", "muscles", "lungs",
                   "nervous_system", "other")
RENDERFM_LABELS = {201: "threshold_bone", 202: "threshold_vessels", 203: "threshold_lung",
                   204: "threshold_soft_tissue", 255: "foreground"}

# Group membership written by hand from anatomy (label numbers from TotalSegmentator's class map).
MEMBERS = {
    "skeleton": {"vertebrae_L1": 31, "rib_left_7": 98, "femur_left": 75, "hip_left": 77,
                 "sacrum": 25, "costal_cartilages": 117, "skull": 91, "sternum": 116},
    "heart_and_vessels": {"aorta": 52, "inferior_vena_cava": 63, "heart": 51,
                          "portal_vein_and_splenic_vein": 64, "iliac_artery_left": 65},
    "organs": {"liver": 5, "spleen": 1, "kidney_right": 2, "stomach": 6, "colon": 20,
               "urinary_bladder": 21},
    "lungs": {"lung_lower_lobe_left": 11},
    "muscles": {"autochthon_left": 86, "iliopsoas_left": 88, "gluteus_maximus_left": 80},
    "nervous_system": {"spinal_cord": 79, "brain": 90},
}


def _header_names(path) -> dict[int, str]:
    """Label -> name from the Caret XML label table TotalSegmentator embeds in its NIfTI files."""
    xml = nib.load(path).header.extensions[0].get_content().decode()
    return {int(k): n for k, n in re.findall(r'Key="(\d+)"[^>]*><!\[CDATA\[([^\]]*)\]\]>', xml)}


def _raw_table() -> dict:
    with open(resource_path("segmentation", "total_classes.json"), encoding="utf-8") as file:
        return json.load(file)


def test_table_labels_names_and_groups() -> None:
    table = _raw_table()
    names = class_names()
    assert sorted(names) == list(range(1, 118)) + sorted(RENDERFM_LABELS)
    assert len(set(names.values())) == len(names)
    assert {label: names[label] for label in RENDERFM_LABELS} == RENDERFM_LABELS
    assert GROUPS == EXPECTED_GROUPS == tuple(g["name"] for g in table["groups"])
    assert {c["group"] for c in table["classes"]} == set(GROUPS)  # every group is used
    assert group_of(255) == group_of(204) == "other"
    assert "TotalSegmentator" in json.dumps(table["source"])
    assert "Apache-2.0" in json.dumps(table["source"])


@needs_data
@pytest.mark.parametrize("name", ["example_seg", "example_seg_fast_force_split"])
def test_names_match_totalsegmentator_header(name: str) -> None:
    header = _header_names(TOTALSEG / f"{name}.nii.gz")
    assert len(header) == 117
    assert header == {label: n for label, n in class_names().items() if label <= 117}


@needs_data
def test_names_in_snomed_mapping() -> None:
    with open(TOTALSEG / "totalsegmentator_snomed_mapping.csv", encoding="utf-8") as file:
        structures = {row["Structure"] for row in csv.DictReader(file)}
    missing = [n for label, n in class_names().items() if label <= 117 and n not in structures]
    assert missing == []


def test_hand_written_group_membership() -> None:
    for group, members in MEMBERS.items():
        for name, label in members.items():
            assert label_of(name) == label, name
            assert group_of(label) == group, name
            assert label in labels_in_groups([group])


def test_label_of() -> None:
    assert label_of("kidney_right") == 2
    assert label_of("Vertebrae_l1") == label_of("VERTEBRAE_L1") == 31
    assert label_of("foreground") == 255
    with pytest.raises(SegmentationError, match="kidney_right") as info:
        label_of("kidny_right")  # a typo: the message suggests the right name
    assert isinstance(info.value, RenderFMError)
    with pytest.raises(SegmentationError, match="zzzz"):
        label_of("zzzz")


def test_groups_lookup_and_colors() -> None:
    assert group_of(1001) == "other"  # not in the table
    assert labels_in_groups("lungs") == labels_in_groups(["lungs"]) == {10, 11, 12, 13, 14, 16, 203}
    assert labels_in_groups([]) == set()
    everything = labels_in_groups(GROUPS)
    assert everything == set(class_names())
    with pytest.raises(SegmentationError, match="bones.*skeleton, organs"):
        labels_in_groups(["skeleton", "bones"])

    lookup = group_lookup(300)
    assert lookup.shape == (301,) and lookup.dtype == torch.int64
    assert lookup[0] == -1
    assert GROUPS[lookup[51]] == "heart_and_vessels" and GROUPS[lookup[31]] == "skeleton"
    assert GROUPS[lookup[150]] == "other"  # a label between 117 and 201 is not in the table
    assert all(GROUPS[lookup[label]] == group_of(label) for label in range(1, 301))
    lookup[1] = 99  # the caller's copy: the cached table is untouched
    assert group_lookup(300)[1] == GROUPS.index("organs")
    assert group_lookup(0).tolist() == [-1]

    colors = look_colors()
    assert list(colors) == list(GROUPS)
    assert colors["skeleton"] == (0.93, 0.89, 0.80)
    assert colors["heart_and_vessels"] == (0.80, 0.12, 0.10)
    assert colors["other"] is None
    assert all(c is None or all(0 <= v <= 1 for v in c) for c in colors.values())


def test_group_masks_rejects_non_labels() -> None:
    with pytest.raises(SegmentationError, match="integers"):
        group_masks(torch.zeros(2, 2, 2))
    with pytest.raises(SegmentationError, match=">= 0"):
        group_masks(torch.tensor([[[-1, 0]]]))


@needs_data
@pytest.mark.parametrize("name", ["example_seg", "example_seg_fast_force_split"])
def test_group_masks_on_real_segmentations(name: str) -> None:
    array = np.asarray(nib.load(TOTALSEG / f"{name}.nii.gz").dataobj)
    counts = np.bincount(array.ravel().astype(np.int64), minlength=256)
    masks = group_masks(torch.from_numpy(array.astype(np.int64)))

    assert list(masks) == list(GROUPS)
    for group, mask in masks.items():
        assert mask.dtype == torch.bool and mask.shape == array.shape
        expected = sum(int(counts[label]) for label in labels_in_groups([group]) if label < 256)
        assert int(mask.sum()) == expected, group
    # The groups partition the foreground exactly; background is in none.
    stacked = torch.stack(list(masks.values())).sum(dim=0)
    assert torch.equal(stacked, torch.from_numpy(array != 0).long())
    present = set(np.flatnonzero(counts[1:]) + 1)
    # Every present label is one of TotalSegmentator's, so nothing falls into 'other'.
    assert present <= set(range(1, 118)) and int(masks["other"].sum()) == 0
    # Hand-checked groups of labels these files hold (see shared/data/README.md).
    assert {31, 98, 117} <= present
    for label in (31, 98, 117):
        assert bool(masks["skeleton"][torch.from_numpy(array == label)].all())
    for label in (52, 63, 64):
        assert bool(masks["heart_and_vessels"][torch.from_numpy(array == label)].all())
    assert bool(masks["nervous_system"][torch.from_numpy(array == 79)].all())
    assert int(masks["muscles"].sum()) == int(counts[80:90].sum())  # glutei, autochthon, iliopsoas


@needs_data
def test_skeleton_is_substantial_in_full_scan() -> None:
    """The full scan (thorax base to femur heads) holds spine, pelvis, femurs and ribs: more than
    5% of the segmented voxels (the fast force-split result; counted here with numpy)."""
    array = np.asarray(nib.load(TOTALSEG / "example_seg_fast_force_split.nii.gz").dataobj)
    masks = group_masks(torch.from_numpy(array.astype(np.int64)))
    foreground = int(np.count_nonzero(array))
    skeleton_labels = [31, 98, 75, 77, 25, 26, 27, 28, 29, 30, 117]
    assert int(masks["skeleton"].sum()) >= int(np.isin(array, skeleton_labels).sum())
    assert int(masks["skeleton"].sum()) > 0.05 * foreground
    assert {75, 76, 77, 78, 25} <= set(np.unique(array).tolist())  # femurs, hips, sacrum present
