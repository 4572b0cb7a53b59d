"""Slicer's own volume rendering beside RenderFM, for one prepared CT and preset; no Qt.

A SideBySide shows Slicer's native volume rendering of the CT (native.py: the CPU
or the GPU ray cast, which treat opacity differently, DESIGN.md section 3) in one 3D view and
RenderFM in another with their cameras kept equal (link.py), or both in one view, shown in turn.
Both sides show the same crop (the overlay's box, given to the native side as an ROI node) and the
same transfer function (a Preset read from the user's display node follows its Shift), and the
measurement scores only the pixels that see the box. It keeps what it changes in the scene (the
volume's own volume rendering display nodes) and puts it back in stop(). RenderFM's first frame
renders in the overlay's worker when it has one (RenderFMOverlay(background=True)): start()
returns at once and the overlay's tick() shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RenderFMError
from ..transfer import Preset
from .camera import camera_from_node
from .link import CameraLink
from .native import NATIVE_METHODS, remove_volume_rendering, show_volume_rendering
from .view import read_pixels


class SideBySide:
    """Native volume rendering of volume_node with preset (a bundled preset name, a preset file
    or a Preset, e.g. native.preset_from_property_node of the user's display node) by method
    ("cpu" or "gpu", native.NATIVE_METHODS) against gaussians, shown through overlay (a
    RenderFMOverlay), both cropped to overlay.crop. follow: the user's volume rendering display
    node, whose ROI node and volume property node the native side then shares, so that moving
    the ROI or the Shift slider changes Slicer's side at once (RenderFM's follows through a
    display_follow.DisplayFollower); its Crop checkbox is copied to the native side whenever it
    changes."""

    def __init__(self, overlay: Any, gaussians: Any, volume_node: Any,
                 preset: str | Path | Preset, method: str, follow: Any = None) -> None:
        self._overlay, self._gaussians = overlay, gaussians
        self._volume, self._preset, self._method = volume_node, preset, method
        self._follow = follow
        self._display: Any = None  # Slicer's display node while started
        self._render_target: Any = None
        self._saved_displays: list[tuple[Any, list[str], int]] = []  # (node, view IDs, visibility)
        self._link: CameraLink | None = None  # the two views' cameras, kept equal
        self._follow_tag: int | None = None  # the observer of follow's Crop checkbox

    @property
    def method_label(self) -> str:
        """The native mapper, as the measurements name it."""
        return NATIVE_METHODS[self._method]

    def start(self, native_target: Any, render_target: Any) -> None:
        """Native rendering in native_target's view, RenderFM in render_target's (ViewTargets).

        The same view for both shows RenderFM first (show_native_only switches); two views get
        the native view's camera and move together until stop().
        """
        self._saved_displays = [(node, list(node.GetViewNodeIDs()), node.GetVisibility())
                                for node in self._volume_renderings()]
        for node, _, _ in self._saved_displays:
            node.SetVisibility(False)  # the volume's own renderings would mix into both sides
        self._display = show_volume_rendering(self._overlay.context, native_target, self._volume,
                                              self._preset, self._method, self._overlay.crop)
        if self._follow is not None:
            self._share_nodes(self._follow)
        self._render_target = render_target
        if _same_view(native_target, render_target):
            self._display.SetVisibility(False)
        else:
            self._link = CameraLink(native_target.camera_node, render_target.camera_node)
        self._overlay.close()
        self._overlay.show(render_target, self._gaussians, wait=False)

    def show_native_only(self, native: bool) -> None:
        """Single view: Slicer's rendering alone (True) or RenderFM alone (False)."""
        self._display.SetVisibility(native)
        if native:
            self._overlay.hide(self._render_target)
        else:
            self._overlay.show(self._render_target, self._gaussians, wait=False)

    def measure(self) -> dict:
        """SSIM and PSNR of RenderFM against the native rendering for RenderFM's view and camera,
        over the pixels that see the crop box (all without one): {"native": mapper label,
        "ssim": float, "psnr": float (dB)}."""
        target, display = self._render_target, self._display
        views, visible = list(display.GetViewNodeIDs()), display.GetVisibility()
        was_shown = self._overlay.is_shown(target)
        try:
            display.AddViewNodeID(target.view_node.GetID())  # the native image of the same view
            display.SetVisibility(True)
            if not was_shown:
                self._overlay.show(target, self._gaussians)
            return native_vs_renderfm(self._overlay, target, self.method_label)
        finally:
            display.SetViewNodeIDs(views)
            display.SetVisibility(visible)
            if not was_shown:
                self._overlay.hide(target)
            target.render()

    def stop(self) -> None:
        """Remove the native rendering, restore the volume's renderings, unlink the cameras and
        hide RenderFM (safe to repeat)."""
        if self._display is not None:
            shared = [self._follow.GetVolumePropertyNode(), self._follow.GetROINode()] \
                if self._follow is not None else []
            remove_volume_rendering(self._display, keep=shared)
        self._display = None
        for node, views, visible in self._saved_displays:
            node.SetViewNodeIDs(views)
            node.SetVisibility(visible)
        if self._follow_tag is not None:
            self._follow.RemoveObserver(self._follow_tag)
            self._follow_tag = None
        if self._link is not None:
            self._link.close()
        self._saved_displays, self._link = [], None
        self._overlay.close()

    def _share_nodes(self, display: Any) -> None:
        """The native side takes display's ROI node, Crop checkbox (now and when it changes) and
        volume property node (the copies show_volume_rendering made are removed)."""
        import vtk

        scene = self._display.GetScene()
        made = [self._display.GetVolumePropertyNode(), self._display.GetROINode()]
        if display.GetVolumePropertyNode() is not None:
            self._display.SetAndObserveVolumePropertyNodeID(display.GetVolumePropertyNodeID())
        self._display.SetAndObserveROINodeID(display.GetROINodeID())
        self._display.SetCroppingEnabled(display.GetCroppingEnabled())
        for node in made:
            if node is not None and node not in (display.GetVolumePropertyNode(),
                                                 display.GetROINode()):
                scene.RemoveNode(node)

        def cropping_changed(*_: Any) -> None:
            if self._display is not None:
                self._display.SetCroppingEnabled(display.GetCroppingEnabled())

        self._follow_tag = display.AddObserver(vtk.vtkCommand.ModifiedEvent, cropping_changed)

    def _volume_renderings(self) -> list:
        """The volume's volume rendering display nodes."""
        nodes = (self._volume.GetNthDisplayNode(i)
                 for i in range(self._volume.GetNumberOfDisplayNodes()))
        return [node for node in nodes
                if node is not None and node.IsA("vtkMRMLVolumeRenderingDisplayNode")]


def native_vs_renderfm(overlay: Any, target: Any, method_label: str,
                       native_target: Any = None) -> dict:
    """SSIM and PSNR between Slicer's native rendering and RenderFM's, for target's camera, over
    the pixels that see overlay.crop (all pixels when it is None).

    overlay: the RenderFMOverlay showing RenderFM in target's view (a ViewTarget). The native image
    is target's view with RenderFM's layer hidden, or native_target's view (e.g. the other side of
    a comparison layout, same size and camera); the RenderFM image is target's view with its layer
    at full resolution and its own volume renderings hidden. method_label names the native mapper
    (CPU and GPU ray cast differ, DESIGN.md section 3).
    Returns {"native": method_label, "ssim": float, "psnr": float (dB)}.
    """
    from ..evaluation import metrics

    if native_target is None:
        native = overlay.capture_native(target)
    else:
        native_target.render()
        native = read_pixels(native_target.render_window)
    renderfm = overlay.capture_renderfm(target)
    if native.shape != renderfm.shape:
        raise RenderFMError(f"the native view is {native.shape[1]}x{native.shape[0]} pixels "
                            f"and RenderFM's {renderfm.shape[1]}x{renderfm.shape[0]}: use "
                            "views of one size")
    mask = _cropped_pixels(overlay.crop, target, renderfm.shape)
    return {"native": method_label, "ssim": metrics.ssim(native, renderfm, mask),
            "psnr": metrics.psnr(native, renderfm, mask)}


def _cropped_pixels(crop: Any, target: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """The pixels of target's view (shape [H, W, 3]) that see the crop box; None without one.
    RenderFMError when the box is out of sight (nothing to score)."""
    if crop is None:
        return None
    mask = crop.screen_mask(camera_from_node(target.camera_node), shape[1], shape[0])
    if not mask.any():
        raise RenderFMError("the crop box is out of the view: nothing to measure")
    return mask


def _same_view(first: Any, second: Any) -> bool:
    return first.view_node.GetID() == second.view_node.GetID()
