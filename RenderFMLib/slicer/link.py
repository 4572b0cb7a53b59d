"""Keep the cameras of two 3D views equal: a change to either camera node is copied to the other.

Slicer's view nodes have a LinkedControl flag, but in slicer-core nothing acts on it (desktop
Slicer's view link logic needs the camera's interaction flags, which interaction in trame-slicer's
views never sets), so CameraLink observes both camera nodes itself. A guard stops the copy's own
ModifiedEvent from being copied back.
"""

from __future__ import annotations

from typing import Any

# What a copy carries over: getter and setter names on vtkMRMLCameraNode (RAS mm, degrees).
_PROPERTIES = (("GetParallelProjection", "SetParallelProjection"),
               ("GetParallelScale", "SetParallelScale"), ("GetPosition", "SetPosition"),
               ("GetFocalPoint", "SetFocalPoint"), ("GetViewUp", "SetViewUp"),
               ("GetViewAngle", "SetViewAngle"))


class CameraLink:
    """Two vtkMRMLCameraNodes kept equal: second takes first's camera now, then each change to
    either is copied to the other (one ModifiedEvent per copy) until close()."""

    def __init__(self, first: Any, second: Any) -> None:
        import vtk

        self._nodes = (first, second)
        self._copying = False  # set while a copy's own ModifiedEvent arrives
        copy_camera(first, second)
        self._observers = [
            (source, source.AddObserver(vtk.vtkCommand.ModifiedEvent,
                                        lambda *_, s=source, t=target: self._copy(s, t)))
            for source, target in ((first, second), (second, first))
        ]

    def _copy(self, source: Any, target: Any) -> None:
        if self._copying:
            return
        self._copying = True
        try:
            copy_camera(source, target)
        finally:
            self._copying = False

    def close(self) -> None:
        """Stop copying (idempotent); the cameras stay where they are."""
        for node, tag in self._observers:
            node.RemoveObserver(tag)
        self._observers = []


def copy_camera(source: Any, target: Any) -> None:
    """Give target (a vtkMRMLCameraNode) source's projection, position, focal point, view up and
    view angle, in one ModifiedEvent (none if they are equal already)."""
    was_modifying = target.StartModify()
    try:
        for getter, setter in _PROPERTIES:
            value = getattr(source, getter)()
            if isinstance(value, tuple):
                getattr(target, setter)(*value)
            else:
                getattr(target, setter)(value)
    finally:
        target.EndModify(was_modifying)
