"""An RGBA image drawn over a VTK render window, on its own renderer layer (Slicer's 3D views).

Slicer's displayable managers use render layers 0, 1 and 2 (../shared/SLICER_HEADLESS.md); the
ImageLayer adds one more on top, with a non-interactive renderer holding a vtkImageActor and a
parallel camera fitted so that the image covers the whole viewport (stretched when its size differs
from the window's, e.g. a draft rendered at half resolution). The image is blended "over" what the
lower layers drew with straight (not premultiplied) alpha: a pixel of alpha a and colour c reads
back as a c + (1 - a) native, and pixels of alpha 0 leave the native image untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CAMERA_DISTANCE = 1.0
"""Distance from the parallel camera to the image plane (window-pixel units)."""


def _as_rgba8(rgba: np.ndarray) -> np.ndarray:
    """[H, W, 4] uint8 from uint8 or float in [0, 1] (rounded); ValueError for another shape."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.shape[0] < 1 or rgba.shape[1] < 1:
        raise ValueError(f"the layer's image must be [H, W, 4] RGBA, not {list(rgba.shape)}")
    if rgba.dtype == np.uint8:
        return rgba
    if not np.issubdtype(rgba.dtype, np.floating):
        raise ValueError(f"the layer's image must be uint8 or float in [0, 1], not {rgba.dtype}")
    return (np.clip(np.nan_to_num(rgba), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class ImageLayer:
    """A non-interactive renderer on the top layer of render_window, showing one RGBA image.

    render_window: a vtkRenderWindow (a Slicer 3D view's, or an offscreen one). The layer is a new
    one on top (the number of layers raised by one), or the top layer when no renderer is on it
    any more (one an earlier ImageLayer left), so showing and hiding again and again does not pile
    up layers. The count is never lowered: VTK stops drawing renderers on dropped layers.
    """

    def __init__(self, render_window: Any) -> None:
        import vtk

        self._window = render_window
        layer = render_window.GetNumberOfLayers()
        if _free_top_layer(render_window):
            layer -= 1  # the top layer, left empty by an earlier ImageLayer
        else:
            render_window.SetNumberOfLayers(layer + 1)
        self._renderer = vtk.vtkRenderer()
        self._renderer.SetLayer(layer)
        self._renderer.InteractiveOff()
        self._renderer.GetActiveCamera().ParallelProjectionOn()
        self._image = vtk.vtkImageData()
        self._actor = vtk.vtkImageActor()
        self._actor.GetMapper().SetInputData(self._image)
        self._actor.GetMapper().BorderOn()  # draw whole pixels, not centre to centre
        self._actor.ForceTranslucentOn()
        self._actor.InterpolateOff()
        self._actor.VisibilityOff()  # nothing to show until set_image
        self._renderer.AddViewProp(self._actor)
        # Refit before every render: the window may have been resized since the last image.
        self._observer = self._renderer.AddObserver(vtk.vtkCommand.StartEvent, self._fit)
        render_window.AddRenderer(self._renderer)
        self._removed = False

    @property
    def renderer(self) -> Any:
        """The layer's vtkRenderer."""
        return self._renderer

    @property
    def visible(self) -> bool:
        """Whether the layer draws (its image stays loaded while hidden)."""
        return bool(self._renderer.GetDraw())

    @visible.setter
    def visible(self, value: bool) -> None:
        self._renderer.SetDraw(bool(value))

    def set_image(self, rgba: np.ndarray) -> None:
        """Show rgba: [H, W, 4] uint8, or float in [0, 1], straight alpha, top row first.

        The image is stretched over the whole viewport (linear interpolation when its size
        differs from the window's, none when it matches, so pixels map one to one). The caller
        renders the window.
        """
        from vtk.util import numpy_support

        rgba = _as_rgba8(rgba)
        height, width = rgba.shape[:2]
        flipped = np.ascontiguousarray(rgba[::-1])  # VTK images start at the bottom row
        scalars = numpy_support.numpy_to_vtk(flipped.reshape(-1, 4), deep=True)
        scalars.SetName("RGBA")
        self._image.SetDimensions(width, height, 1)
        self._image.GetPointData().SetScalars(scalars)
        self._image.Modified()
        self._actor.SetInterpolate(tuple(self._window.GetSize()) != (width, height))
        self._actor.VisibilityOn()
        self._fit()

    def _fit(self, *_: Any) -> None:
        """Scale the image to the window's size in pixels and aim the parallel camera at it."""
        width, height = self._image.GetDimensions()[:2]
        window_width, window_height = self._window.GetSize()
        if min(width, height, window_width, window_height) < 1:
            return
        # Pixel i covers [i - 0.5, i + 0.5] before scaling; after it, [0, window size] in x and y.
        scale_x, scale_y = window_width / width, window_height / height
        self._actor.SetScale(scale_x, scale_y, 1.0)
        self._actor.SetPosition(0.5 * scale_x, 0.5 * scale_y, 0.0)
        camera = self._renderer.GetActiveCamera()
        centre = (0.5 * window_width, 0.5 * window_height)
        camera.SetFocalPoint(*centre, 0.0)
        camera.SetPosition(*centre, _CAMERA_DISTANCE)
        camera.SetViewUp(0.0, 1.0, 0.0)
        camera.SetParallelScale(0.5 * window_height)
        camera.SetClippingRange(0.5 * _CAMERA_DISTANCE, 2.0 * _CAMERA_DISTANCE)

    def remove(self) -> None:
        """Take the renderer out of the window (idempotent); the layer count stays as it is."""
        if self._removed:
            return
        self._removed = True
        self._renderer.RemoveObserver(self._observer)
        self._window.RemoveRenderer(self._renderer)


def _free_top_layer(render_window: Any) -> bool:
    """Whether the window's top layer (above Slicer's 0, 1 and 2) has no renderer on it."""
    top = render_window.GetNumberOfLayers() - 1
    renderers = render_window.GetRenderers()
    renderers.InitTraversal()
    layers = {renderers.GetNextItem().GetLayer() for _ in range(renderers.GetNumberOfItems())}
    return top >= 3 and top not in layers
