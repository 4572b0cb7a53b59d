"""RenderFM's Camera <-> Slicer's vtkMRMLCameraNode (position, focal point, view up in RAS mm;
vertical view angle in degrees; perspective only).

The node's camera is the 3D view's vtkCamera, so what is set here is what Slicer draws with;
camera.py turns it into the rasterizer's OpenCV pinhole (DESIGN.md section 2).
"""

from __future__ import annotations

from typing import Any

from ..camera import Camera
from ..errors import CameraError


def camera_from_node(camera_node: Any) -> Camera:
    """The Camera a vtkMRMLCameraNode holds; CameraError for a parallel projection (RenderFM
    renders perspective views only) or a degenerate camera."""
    if camera_node is None:
        raise CameraError("no camera node given")
    if camera_node.GetParallelProjection():
        raise CameraError(f"camera '{camera_node.GetName()}' uses a parallel (orthographic) "
                          "projection; switch the 3D view to perspective for RenderFM")
    try:
        return Camera(tuple(camera_node.GetPosition()), tuple(camera_node.GetFocalPoint()),
                      tuple(camera_node.GetViewUp()), float(camera_node.GetViewAngle()))
    except CameraError as error:
        raise CameraError(f"camera '{camera_node.GetName()}': {error}") from None


def set_camera_node(camera_node: Any, camera: Camera) -> None:
    """Make a vtkMRMLCameraNode show camera: perspective, one ModifiedEvent for the change."""
    if camera_node is None:
        raise CameraError("no camera node given")
    was_modifying = camera_node.StartModify()
    try:
        camera_node.SetParallelProjection(0)
        camera_node.SetPosition(*camera.position)
        camera_node.SetFocalPoint(*camera.focal_point)
        camera_node.SetViewUp(*camera.view_up)
        camera_node.SetViewAngle(float(camera.view_angle))
    finally:
        camera_node.EndModify(was_modifying)
