"""render_native: Slicer's CPU ray cast of a CT as ground-truth images, headless."""

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from RenderFMLib.camera import orbit, orbit_camera  # noqa: E402
from RenderFMLib.errors import RenderFMError  # noqa: E402
from RenderFMLib.groundtruth.slicer_native import render_native  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402


def test_one_image_per_camera_and_independent_of_order(sample_ct) -> None:
    cameras = orbit(sample_ct.center_ras(), sample_ct.bounding_radius(), 2)
    images = render_native(sample_ct, "CT-Bone", cameras, (80, 64), background=(0.0, 0.0, 1.0))
    assert len(images) == 2
    for image in images:
        assert image.shape == (64, 80, 3) and image.dtype == np.uint8
        assert tuple(image[0, 0]) == (0, 0, 255)  # the corner shows the background
        assert (image.max(axis=-1) > 0).mean() > 0.2  # and the body covers a good part
    assert not np.array_equal(images[0], images[1])  # anterior and posterior differ
    # Reusing one scene and view for several cameras leaves no trace in later frames.
    alone = render_native(sample_ct, "CT-Bone", cameras[1], (80, 64), background=(0.0, 0.0, 1.0))
    assert len(alone) == 1 and np.array_equal(alone[0], images[1])


def test_a_preset_object_renders_like_slicers_named_preset(sample_ct) -> None:
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 30.0, 10.0)
    by_name = render_native(sample_ct, "CT-AAA", camera, 64)[0]
    by_preset = render_native(sample_ct, load_preset("CT-AAA"), camera, 64)[0]
    assert np.array_equal(by_name, by_preset)


def test_bad_requests_are_refused(sample_ct) -> None:
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 0.0, 0.0)
    with pytest.raises(RenderFMError, match="Camera"):
        render_native(sample_ct, "CT-Bone", [], 64)
    with pytest.raises(RenderFMError, match="method 'mip'"):
        render_native(sample_ct, "CT-Bone", camera, 64, method="mip")
    with pytest.raises(RenderFMError, match="size"):
        render_native(sample_ct, "CT-Bone", camera, 0)
