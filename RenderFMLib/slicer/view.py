"""A headless Slicer 3D view: Slicer's displayable managers drawing into an offscreen window.

Built the way ../shared/SLICER_HEADLESS.md measured: an offscreen vtkRenderWindow (EGL unless
VTK_DEFAULT_OPENGL_WINDOW says otherwise), one renderer and interactor, a displayable manager
group from Slicer's 3D view factory, Slicer's 3D interactor style, and a view node from a
vtkMRMLViewLogic. Box, axis labels, orientation marker and ruler are off and both background
colours equal, so an image holds the rendered volume (or segmentation) on a flat background.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from ..camera import Camera
from ..errors import CameraError, RenderFMError
from .camera import camera_from_node, set_camera_node
from .context import SlicerContext

DISPLAYABLE_MANAGERS = (
    "vtkMRMLCameraDisplayableManager",
    "vtkMRMLViewDisplayableManager",
    "vtkMRMLVolumeRenderingDisplayableManager",
    "vtkMRMLSegmentationsDisplayableManager3D",
)
"""The 3D displayable managers a view gets (camera first: the others find its camera)."""

_CAMERA_TOLERANCE = 1e-6  # view-matrix entries and degrees; a reset moves them by mm or more
_view_numbers = itertools.count(1)


class OffscreenThreeDView:
    """An offscreen Slicer 3D view of context.scene, size (width, height) pixels, background RGB
    in [0, 1]. Use as a context manager, or call close() to release its GL resources."""

    def __init__(self, context: SlicerContext, size: tuple[int, int] = (512, 512),
                 background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        import slicer
        import vtk

        width, height = _checked_size(size)
        color = _checked_color(background)
        self._context = context
        self._render_window = vtk.vtkRenderWindow()
        self._render_window.SetOffScreenRendering(1)
        self._render_window.SetMultiSamples(0)  # deterministic images
        self._render_window.SetSize(width, height)
        self._renderer = vtk.vtkRenderer()
        self._render_window.AddRenderer(self._renderer)
        self._interactor = vtk.vtkRenderWindowInteractor()
        self._interactor.SetRenderWindow(self._render_window)
        self._group = _displayable_managers(slicer, context, self._renderer)
        self._style = slicer.vtkMRMLThreeDViewInteractorStyle()
        self._style.SetDisplayableManagers(self._group)
        self._style.SetInteractor(self._interactor)
        self._view_logic = slicer.vtkMRMLViewLogic()
        self._view_logic.SetMRMLApplicationLogic(context.app_logic)
        context.app_logic.GetViewLogics().AddItem(self._view_logic)
        self._view_logic.SetMRMLScene(context.scene)
        self._view_node = self._view_logic.AddViewNode(f"RenderFM{next(_view_numbers)}")
        _plain_view(self._view_node, color)
        self._group.SetMRMLDisplayableNode(self._view_node)
        self._closed = False

    @property
    def render_window(self) -> Any:
        """The offscreen vtkRenderWindow."""
        return self._render_window

    @property
    def renderer(self) -> Any:
        """The vtkRenderer Slicer's displayable managers draw into (layer 0)."""
        return self._renderer

    @property
    def displayable_manager_group(self) -> Any:
        """The vtkMRMLDisplayableManagerGroup (DISPLAYABLE_MANAGERS) drawing the scene."""
        return self._group

    @property
    def view_node(self) -> Any:
        """The vtkMRMLViewNode of this view."""
        return self._view_node

    @property
    def camera_node(self) -> Any:
        """The vtkMRMLCameraNode the camera displayable manager made for this view."""
        manager = self._group.GetDisplayableManagerByClassName("vtkMRMLCameraDisplayableManager")
        return manager.GetCameraNode()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return tuple(self._render_window.GetSize())

    def set_camera(self, camera: Camera) -> None:
        """Point the view's camera node at camera (RAS mm)."""
        set_camera_node(self.camera_node, camera)
        self._renderer.ResetCameraClippingRange()

    def camera(self) -> Camera:
        """The view's current camera."""
        return camera_from_node(self.camera_node)

    def render(self) -> None:
        """Render one frame; CameraError (a RenderFMError) if rendering moved the camera (e.g. a
        displayable manager reset it), so the image would not show the camera asked for."""
        self._check_open()
        self._renderer.ResetCameraClippingRange()
        before = self.camera()
        self._render_window.Render()
        _check_unchanged(before, self.camera())

    def capture(self) -> np.ndarray:
        """Render, then read the frame back: uint8 [H, W, 3] RGB, top row first."""
        self.render()
        return read_pixels(self._render_window)

    def close(self) -> None:
        """Detach the view from the scene and release the window's GL resources."""
        if self._closed:
            return
        self._closed = True
        self._group.SetMRMLDisplayableNode(None)
        self._style.SetInteractor(None)
        self._render_window.Finalize()
        self._context.app_logic.GetViewLogics().RemoveItem(self._view_logic)
        self._view_logic.SetMRMLScene(None)
        self._context.scene.RemoveNode(self._view_node)

    def __enter__(self) -> OffscreenThreeDView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RenderFMError("this offscreen 3D view was closed")


def _checked_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) as positive ints; RenderFMError otherwise."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise RenderFMError(f"a view size is (width, height) in pixels, not {size!r}") from None
    if width < 1 or height < 1:
        raise RenderFMError(f"a view size must be positive, not {width}x{height}")
    return width, height


def _displayable_managers(slicer: Any, context: SlicerContext, renderer: Any) -> Any:
    """A displayable manager group of DISPLAYABLE_MANAGERS from Slicer's 3D view factory."""
    factory = slicer.vtkMRMLThreeDViewDisplayableManagerFactory.GetInstance()
    factory.SetMRMLApplicationLogic(context.app_logic)
    for name in DISPLAYABLE_MANAGERS:
        if not factory.IsDisplayableManagerRegistered(name):
            factory.RegisterDisplayableManager(name)
    group = slicer.vtkMRMLDisplayableManagerGroup()
    group.Initialize(factory, renderer)
    return group


def _checked_color(background: tuple[float, float, float]) -> tuple[float, float, float]:
    """An RGB colour of three numbers in [0, 1]; RenderFMError otherwise."""
    try:
        color = tuple(float(v) for v in background)
    except (TypeError, ValueError):
        color = ()
    if len(color) != 3 or not all(0.0 <= v <= 1.0 for v in color):
        raise RenderFMError(f"background must be three numbers in [0, 1], not {background!r}")
    return color


def _plain_view(view_node: Any, color: tuple[float, float, float]) -> None:
    """No box, axis labels, orientation marker or ruler; a flat background colour."""
    was_modifying = view_node.StartModify()
    view_node.SetBoxVisible(0)
    view_node.SetAxisLabelsVisible(0)
    view_node.SetOrientationMarkerType(view_node.OrientationMarkerTypeNone)
    view_node.SetRulerType(view_node.RulerTypeNone)
    view_node.SetBackgroundColor(*color)
    view_node.SetBackgroundColor2(*color)
    view_node.EndModify(was_modifying)


def _check_unchanged(expected: Camera, actual: Camera) -> None:
    """CameraError if the view's camera is no longer the one set (e.g. Slicer reset it)."""
    moved = np.abs(expected.view_matrix() - actual.view_matrix()).max()
    angle = abs(expected.view_angle - actual.view_angle)
    if moved > _CAMERA_TOLERANCE * max(1.0, np.abs(expected.position).max()) or \
            angle > _CAMERA_TOLERANCE:
        raise CameraError(f"the 3D view's camera changed during rendering (view matrix moved by "
                          f"{moved:.3g}, view angle by {angle:.3g} degrees): it was reset")


def read_pixels(render_window: Any) -> np.ndarray:
    """What render_window last drew (back buffer, no re-render): uint8 [H, W, 3] RGB, top row
    first."""
    import vtk
    from vtk.util import numpy_support

    width, height = render_window.GetSize()
    pixels = vtk.vtkUnsignedCharArray()
    render_window.GetPixelData(0, 0, width - 1, height - 1, 0, pixels, 0)
    return np.ascontiguousarray(numpy_support.vtk_to_numpy(pixels).reshape(height, width, 3)[::-1])
