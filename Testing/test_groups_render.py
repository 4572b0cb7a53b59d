"""Anatomical groups at preparation (masking, looks) and at render time (hiding), on the sample."""

import numpy as np
import pytest
import torch

from RenderFMLib.api import default_camera, prepare, render
from RenderFMLib.demo import sample_paths
from RenderFMLib.errors import RenderFMError, SegmentationError
from RenderFMLib.segmentation.classes import GROUPS, group_lookup, labels_in_groups, look_colors
from RenderFMLib.volume import read_ct, read_segmentation

SIZE = 128


@pytest.fixture(scope="module")
def sample():
    ct_path, seg_path = sample_paths()
    ct = read_ct(ct_path)
    seg = read_segmentation(seg_path, ct)
    return ct, seg, prepare(ct, seg, "CT-Bone")


def test_hiding_the_skeleton_removes_its_pixels_and_leaves_the_rest(sample):
    ct, seg, gaussians = sample
    camera = default_camera(gaussians)
    everything = render(gaussians, camera, SIZE)
    no_bone = render(gaussians, camera, SIZE, hidden_groups=["skeleton"])
    skeleton = render(gaussians, camera, SIZE, visible_labels=labels_in_groups(["skeleton"]))
    reached = skeleton.alpha > 0  # pixels that some skeleton Gaussian touches
    assert reached.float().mean() > 0.05
    # Elsewhere the same Gaussians blend in the same order. Only rounding differs: the blend's
    # float64 prefix sums run across pixels, so 1e-5 (float32 output) bounds it.
    assert (everything.rgb[~reached] - no_bone.rgb[~reached]).abs().max() < 1e-5
    assert (everything.alpha[~reached] - no_bone.alpha[~reached]).abs().max() < 1e-5
    # Where bone was, the picture changes (CT-Bone shows the body in front, so compare colour).
    changed = (everything.rgb - no_bone.rgb).abs().amax(-1) > 1e-3
    assert changed[reached].float().mean() > 0.3


def test_hidden_groups_leave_no_gaussian_of_theirs(sample):
    _, _, gaussians = sample
    camera = default_camera(gaussians)
    hidden = ["skeleton", "organs", "heart_and_vessels", "muscles", "lungs", "nervous_system",
              "other"]
    frame = render(gaussians, camera, SIZE, hidden_groups=hidden)
    unlabelled = render(gaussians, camera, SIZE, visible_labels={0})
    assert (frame.alpha - unlabelled.alpha).abs().max() < 1e-6  # only label 0 is left


def test_unknown_group_is_a_clear_error(sample):
    _, _, gaussians = sample
    with pytest.raises(SegmentationError, match="skeletons"):
        render(gaussians, default_camera(gaussians), 32, hidden_groups=["skeletons"])


def test_prepare_groups_keeps_only_their_blocks_with_their_looks(sample):
    ct, seg, everything = sample
    bones = prepare(ct, seg, "CT-Bone", groups=["skeleton"], group_colors=True)
    skeleton = labels_in_groups(["skeleton"])
    assert set(bones.labels.unique().tolist()) <= skeleton
    # Masking blocks by group keeps exactly the skeleton-labelled blocks of the full preparation.
    assert len(bones) == int(torch.isin(everything.labels, torch.tensor(sorted(skeleton))).sum())
    ivory = torch.tensor(look_colors()["skeleton"])
    assert torch.allclose(bones.rgb, ivory.expand_as(bones.rgb))
    # Opacity still comes from the preset: the same as the skeleton blocks of the full one.
    full = everything.opacity_logits[torch.isin(everything.labels, torch.tensor(sorted(skeleton)))]
    assert torch.allclose(bones.opacity_logits.sort().values, full.sort().values)


def test_group_colors_keep_the_preset_colour_of_unlabelled_blocks(sample):
    ct, seg, plain = sample
    looked = prepare(ct, seg, "CT-Bone", group_colors=True)
    unlabelled = plain.labels == 0
    assert unlabelled.any() and torch.equal(looked.rgb[unlabelled], plain.rgb[unlabelled])
    groups = group_lookup(int(plain.labels.max()))[plain.labels]
    vessels = groups == GROUPS.index("heart_and_vessels")
    assert vessels.any()
    red = torch.tensor(look_colors()["heart_and_vessels"])
    assert torch.allclose(looked.rgb[vessels], red.expand(int(vessels.sum()), 3))


def test_groups_without_a_segmentation_are_refused(sample):
    ct, _, _ = sample
    with pytest.raises(RenderFMError, match="needs a segmentation"):
        prepare(ct, None, "CT-Bone", groups=["skeleton"])


def test_threshold_segmentation_through_prepare(sample):
    ct, _, _ = sample
    gaussians = prepare(ct, "threshold", "CT-Bone")
    labels = set(np.unique(gaussians.labels.numpy()).tolist())
    assert labels <= {0, 201, 202, 203, 204} and 201 in labels


@pytest.mark.parametrize("device, phrase", [("cuda", "not available"), ("tpu9", "unknown device")])
def test_unavailable_device_is_a_clear_error(sample, device, phrase):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ct, _, _ = sample
    with pytest.raises(RenderFMError, match=phrase):
        prepare(ct, None, "CT-Bone", device=device)
