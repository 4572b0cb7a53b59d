"""The offscreen Slicer 3D view: image layout, a plain background, reset detection, release."""

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from RenderFMLib.camera import orbit_camera  # noqa: E402
from RenderFMLib.errors import CameraError, RenderFMError  # noqa: E402
from RenderFMLib.slicer.view import DISPLAYABLE_MANAGERS, OffscreenThreeDView  # noqa: E402


def test_empty_scene_renders_only_the_background(context) -> None:
    background = (0.2, 0.4, 0.6)
    with OffscreenThreeDView(context, (96, 64), background) as view:
        view.set_camera(orbit_camera(np.zeros(3), 100.0, 0.0, 0.0))
        image = view.capture()
        node = view.view_node
        assert not node.GetBoxVisible() and not node.GetAxisLabelsVisible()
        assert node.GetBackgroundColor() == node.GetBackgroundColor2() == background
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    # No box, labels, marker or gradient: every pixel is the background colour (8-bit rounding).
    assert np.abs(image.astype(int) - np.array(background) * 255).max() <= 1


def test_view_has_slicers_displayable_managers(context) -> None:
    with OffscreenThreeDView(context, (32, 32)) as view:
        group = view.displayable_manager_group
        names = {group.GetNthDisplayableManager(i).GetClassName()
                 for i in range(group.GetDisplayableManagerCount())}
        assert set(DISPLAYABLE_MANAGERS) <= names
        assert view.camera_node is not None
        assert view.camera_node.GetCamera() is view.renderer.GetActiveCamera()


def test_a_camera_reset_is_caught(context) -> None:
    with OffscreenThreeDView(context, (32, 32)) as view:
        view.set_camera(orbit_camera(np.zeros(3), 50.0, 45.0, 10.0))
        view.render()
        # A camera moved between renders is the caller's choice, not an error:
        view.camera_node.GetCamera().Azimuth(5.0)
        view.render()
        # What a displayable manager might do when something is added: reset during a render.
        reset = view.renderer.AddObserver(
            "StartEvent", lambda *_: view.renderer.ResetCamera((-10, 10, -10, 10, -10, 10)))
        with pytest.raises(CameraError, match="reset"):
            view.render()
        view.renderer.RemoveObserver(reset)


def test_close_releases_the_view(context) -> None:
    view = OffscreenThreeDView(context, (16, 16))
    view_id = view.view_node.GetID()
    with view:
        assert context.scene.GetNodeByID(view_id) is not None
    assert context.scene.GetNodeByID(view_id) is None
    with pytest.raises(RenderFMError, match="closed"):
        view.render()
    view.close()  # twice is fine


@pytest.mark.parametrize("size", [(0, 10), (10,), "big"])
def test_bad_sizes_are_refused(context, size) -> None:
    with pytest.raises(RenderFMError, match="size"):
        OffscreenThreeDView(context, size)


def test_bad_background_is_refused(context) -> None:
    with pytest.raises(RenderFMError, match="background"):
        OffscreenThreeDView(context, (8, 8), (0.0, 2.0, 0.0))
