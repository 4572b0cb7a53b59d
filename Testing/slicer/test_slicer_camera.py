"""Camera <-> vtkMRMLCameraNode, and DESIGN.md section 2's pinhole against VTK's own projection."""

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from RenderFMLib.camera import Camera, orbit_camera  # noqa: E402
from RenderFMLib.errors import CameraError  # noqa: E402
from RenderFMLib.slicer.camera import camera_from_node, set_camera_node  # noqa: E402
from RenderFMLib.slicer.view import OffscreenThreeDView  # noqa: E402

WIDTH, HEIGHT = 320, 200  # not square: a swapped axis or aspect would show
PROJECTION_TOL_PX = 0.2  # DESIGN.md section 2; measured here: 6e-14 px


@pytest.fixture(scope="module")
def view(context):
    with OffscreenThreeDView(context, (WIDTH, HEIGHT)) as view:
        yield view


def test_camera_round_trip(context) -> None:
    node = context.scene.AddNewNodeByClass("vtkMRMLCameraNode", "round trip")
    camera = Camera((12.5, -340.0, 80.25), (1.0, 2.0, 3.0), (0.1, 0.2, 0.97), 22.5)
    set_camera_node(node, camera)
    back = camera_from_node(node)
    np.testing.assert_allclose(back.position, camera.position, atol=1e-12)
    np.testing.assert_allclose(back.focal_point, camera.focal_point, atol=1e-12)
    up = np.array(camera.view_up)
    np.testing.assert_allclose(back.view_up, up / np.linalg.norm(up), atol=1e-12)  # VTK normalizes
    assert back.view_angle == camera.view_angle
    np.testing.assert_allclose(back.view_matrix(), camera.view_matrix(), atol=1e-12)


def test_setting_a_camera_fires_one_modified_event(context) -> None:
    node = context.scene.AddNewNodeByClass("vtkMRMLCameraNode", "events")
    events = []
    node.AddObserver("ModifiedEvent", lambda *_: events.append(1))
    set_camera_node(node, orbit_camera(np.zeros(3), 100.0, 30.0, 10.0))
    assert len(events) == 1


def test_parallel_projection_is_refused(context) -> None:
    node = context.scene.AddNewNodeByClass("vtkMRMLCameraNode", "ortho")
    node.SetParallelProjection(1)
    with pytest.raises(CameraError, match="'ortho'.*parallel"):
        camera_from_node(node)
    set_camera_node(node, orbit_camera(np.zeros(3), 100.0, 0.0, 0.0))  # ours is perspective
    assert not node.GetParallelProjection()


def test_opencv_pinhole_matches_vtks_world_to_display(view) -> None:
    center = np.array([10.0, -20.0, 30.0])
    camera = orbit_camera(center, 150.0, 30.0, 20.0, view_angle=35.0)
    view.set_camera(camera)
    view.render()
    points = center + np.random.default_rng(0).uniform(-100.0, 100.0, (200, 3))
    in_camera = points @ camera.world_to_camera()[:3, :3].T + camera.world_to_camera()[:3, 3]
    pixels = in_camera @ camera.intrinsics(WIDTH, HEIGHT).T
    ours = pixels[:, :2] / pixels[:, 2:]
    vtks = []
    for point in points:
        view.renderer.SetWorldPoint(*point, 1.0)
        view.renderer.WorldToDisplay()
        x, y, _ = view.renderer.GetDisplayPoint()
        vtks.append((x, HEIGHT - y))  # VTK's display y grows upwards from the bottom edge
    assert np.abs(ours - np.array(vtks)).max() < PROJECTION_TOL_PX
    assert view.camera_node.GetCamera() is view.renderer.GetActiveCamera()


def test_view_camera_reads_back_what_was_set(view) -> None:
    camera = orbit_camera(np.array([5.0, 6.0, 7.0]), 80.0, 200.0, -15.0, view_angle=40.0)
    view.set_camera(camera)
    view.render()
    np.testing.assert_allclose(view.camera().view_matrix(), camera.view_matrix(), atol=1e-9)
    assert view.camera().view_angle == 40.0
