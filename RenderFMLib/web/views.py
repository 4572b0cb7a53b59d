"""The two 3D views of `renderfm view`: trame-slicer views streamed to the page as JPEG images.

trame-slicer renders every view on the server (in its asyncio thread) and pushes the frame to an
<img>. Measured on 2 CPU cores (issue 14's probe): capping the pixels per view, one render per
camera change (its interactive and still JPEG qualities equal) and one torch thread took a drag to
RenderFM's first draft from 3.0-4.6 s to 0.8-1.3 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..slicer.context import SlicerContext
from ..slicer.overlay import ViewTarget

JPEG_QUALITY = 80  # interactive = still: trame-rca then renders once per change, not twice
BACKGROUND = "#000000"  # RenderFM renders on black: both views share it
VIEW_NAMES = ("SlicerView", "RenderFMView")  # the views' singleton tags (native, RenderFM)


@dataclass
class WebViews:
    """The scene's context and the two views: their ViewTargets and trame template names."""

    context: SlicerContext
    native: ViewTarget
    renderfm: ViewTarget
    templates: tuple[str, str]
    slicer_views: tuple[Any, Any]  # trame-slicer ThreeDViews (native, RenderFM)

    def reset_camera(self) -> None:
        """Slicer's own camera reset (fit to the volume, anterior view) in the native view; the
        link in SideBySide carries it to RenderFM's."""
        self.slicer_views[0].reset_view()


def create_views(server: Any, max_pixels: int) -> WebViews:
    """A trame-slicer scene with two remote 3D views of at most max_pixels pixels each."""
    from trame_slicer.core import SlicerApp
    from trame_slicer.rca_view.rca_view_factory import RemoteThreeDViewFactory
    from trame_slicer.views import ViewLayoutDefinition

    app = SlicerApp()
    factory = RemoteThreeDViewFactory(server, interactive_quality=JPEG_QUALITY,
                                      populate_view_ui_f=None)
    app.view_manager.register_factory(factory)
    views = []
    for name in VIEW_NAMES:
        view = app.view_manager.create_view(ViewLayoutDefinition.threed_view(
            name=name, label="", background_color=BACKGROUND))
        remote = factory.get_factory_view(name)
        remote.view_adapter.max_pixel_count = max_pixels
        remote.view_adapter.update_quality(JPEG_QUALITY, JPEG_QUALITY)
        views.append(view)
    app.view_manager.set_current_view_ids(list(VIEW_NAMES))  # others' renders are blocked
    context = SlicerContext(app.scene, app.app_logic,
                            app.app_logic.GetModuleLogic("VolumeRendering"),
                            app.segmentations_logic)
    native, renderfm = (_target(view) for view in views)
    templates = tuple(server.translator.translate_key(name) for name in VIEW_NAMES)
    return WebViews(context, native, renderfm, (templates[0], templates[1]),
                    (views[0], views[1]))


def _target(view: Any) -> ViewTarget:
    """A ViewTarget whose redraw renders now (measurements read the pixels back) and has
    trame-slicer push the new frame to the page."""
    window = view.render_window()

    def redraw() -> None:
        window.Render()
        view.schedule_render()

    return ViewTarget(window, view.get_view_node(), view.get_camera_node(), redraw)
