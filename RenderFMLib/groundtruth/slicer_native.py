"""Ground truth from Slicer itself: its native volume rendering of a CT, headless.

Runs Slicer's volume rendering logic and displayable managers from the slicer-core wheel in an
offscreen EGL 3D view (RenderFMLib.slicer). The CPU ray cast (the default) applies opacity per
millimetre like RenderFM's dvr and pathtraced; the GPU ray cast applies it per voxel (see
RenderFMLib.slicer.native.NATIVE_METHODS) and is slow on a software OpenGL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..camera import Camera
from ..crop import CropBox
from ..errors import RenderFMError
from ..transfer import Preset
from ..volume import Volume


def _image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) in pixels from one side or a (width, height) pair."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    return size  # OffscreenThreeDView checks it


def render_native(ct: Volume, preset: Preset | str | Path, cameras: Camera | list[Camera],
                  size: int | tuple[int, int], method: str = "cpu",
                  background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                  crop: CropBox | None = None) -> list[np.ndarray]:
    """Slicer's native volume rendering of ct (HU, RAS mm) seen from each camera.

    preset: a bundled name (Slicer's own preset node), a Preset or a preset file.
    size: one side or (width, height) in pixels; background: RGB in [0, 1].
    method: "cpu" or "gpu" (NATIVE_METHODS); crop: a box (RAS mm) to crop to, through an ROI
    node as Slicer's Crop checkbox does (None: the whole CT). Returns one uint8 [H, W, 3] RGB
    image per camera, top row first, exactly as Slicer's window holds it (divide by 255 for [0, 1]).
    One scene and view serve all cameras; each frame's camera is checked to be the one set.
    Raises RenderFMError when slicer-core is not installed ("install renderfm[slicer]").
    """
    from ..slicer.context import SlicerContext, require_slicer

    require_slicer()
    from ..slicer.native import show_volume_rendering
    from ..slicer.nodes import volume_node
    from ..slicer.view import OffscreenThreeDView

    cameras = [cameras] if isinstance(cameras, Camera) else list(cameras)
    if not cameras or not all(isinstance(c, Camera) for c in cameras):
        raise RenderFMError("render_native needs one Camera or a non-empty list of Cameras")
    context = SlicerContext.headless()
    try:
        with OffscreenThreeDView(context, _image_size(size), background) as view:
            node = volume_node(context, ct, "CT")
            show_volume_rendering(context, view, node, preset, method, crop)
            images = []
            for camera in cameras:
                view.set_camera(camera)
                images.append(view.capture())
    finally:
        context.scene.Clear(1)
    return images
