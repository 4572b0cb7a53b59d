"""ViewerSession (RenderFMLib/web/session.py), the page's work on the scene, without a browser: a
real headless MRML scene, two 128 px offscreen Slicer 3D views standing in for the page's, the
bundled sample without segmentation (CT-AAA: 5058 Gaussians, fast)."""

import os
import re
import time

import numpy as np
import pytest

pytest.importorskip("slicer")
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

from RenderFMLib import api  # noqa: E402
from RenderFMLib.errors import RenderFMError  # noqa: E402
from RenderFMLib.slicer.overlay import ViewTarget  # noqa: E402
from RenderFMLib.web.session import Inputs, ViewerSession  # noqa: E402

PRESET = "CT-AAA"
SIZE = 128
WAIT_S = 60.0  # AGP of the sample takes 0.2-0.5 s, a 128 px frame ~20 ms


@pytest.fixture
def views():
    from RenderFMLib.slicer.context import SlicerContext
    from RenderFMLib.slicer.view import OffscreenThreeDView

    context = SlicerContext.headless()
    views = [OffscreenThreeDView(context, (SIZE, SIZE)) for _ in range(2)]
    yield context, views
    for view in views:
        view.close()


@pytest.fixture
def session(views, sample_ct):
    context, (native, renderfm) = views
    session = ViewerSession(context, ViewTarget.from_offscreen(native),
                            ViewTarget.from_offscreen(renderfm), Inputs(sample_ct, None, PRESET))
    native.set_camera(api.default_camera(api.prepare(sample_ct, None, PRESET), azimuth=20.0))
    yield session
    session.close()


def settle(session: ViewerSession) -> None:
    """Poll as the server's timer does until the preparation and RenderFM's frames are done."""
    deadline = time.monotonic() + WAIT_S
    while session.preparing or session.overlay.rendering():
        assert time.monotonic() < deadline, "not done within 60 s"
        session.poll()
        time.sleep(0.02)
    session.poll()


def lit(view) -> float:
    return float((view.capture().max(axis=2) > 10).mean())


def visible_renderings(context) -> int:
    nodes = context.scene.GetNodesByClass("vtkMRMLVolumeRenderingDisplayNode")
    return sum(nodes.GetItemAsObject(i).GetVisibility() for i in range(nodes.GetNumberOfItems()))


def test_render_shows_renderfm_beside_slicer_with_linked_cameras(session, views):
    context, (native, renderfm) = views
    assert lit(native) > 0.05 and lit(renderfm) < 0.01  # Slicer's rendering only, at first
    session.render("AGP")
    with pytest.raises(RenderFMError, match="already running"):
        session.render("AGP")
    settle(session)
    assert session.gaussians is not None and lit(renderfm) > 0.05
    assert f"{len(session.gaussians):,} Gaussians · prepared in" in session.status()
    cameras = session.cameras()
    assert cameras["renderfm"] == cameras["native"]
    native.camera_node.GetCamera().Azimuth(30.0)
    native.camera_node.GetCamera().Modified()
    moved = session.cameras()
    assert moved["renderfm"] == moved["native"] != cameras["native"]
    # SSIM 0.92 here at 128 px (test_side_by_side: 0.90 with the default preset).
    assert re.match(r"SSIM 0\.[89]\d\d, PSNR \d+\.\d dB against Slicer CPU ray cast",
                    session.measure())


def test_a_preset_change_replaces_slicer_rendering_and_asks_for_render(session, views):
    context, (native, renderfm) = views
    session.render("AGP")
    settle(session)
    before = native.capture()
    displays = context.scene.GetNumberOfNodesByClass("vtkMRMLVolumeRenderingDisplayNode")
    session.set_preset("CT-Bone")
    settle(session)
    assert session.gaussians is None and "press Render" in session.status()
    assert not session.overlay.is_shown(ViewTarget.from_offscreen(renderfm))
    # The comparison's display and the first preset's are gone: one rendering, the new one.
    assert context.scene.GetNumberOfNodesByClass("vtkMRMLVolumeRenderingDisplayNode") == \
        displays - 1
    assert visible_renderings(context) == 1
    assert (native.capture() != before).any(axis=2).mean() > 0.05  # CT-Bone shows the skin
    with pytest.raises(RenderFMError, match="press Render first"):
        session.measure()


def test_cancel_and_a_prepared_model(session, views, sample_ct):
    context, (native, renderfm) = views
    session.render("AGP")
    session.cancel()
    settle(session)
    assert session.gaussians is None and "cancelled" in session.status()
    with pytest.raises(RenderFMError, match="not available: choose one of Network, "):
        session.render("Network (experimental)")
    model = api.prepare(sample_ct, None, PRESET)
    shown = ViewerSession(context, ViewTarget.from_offscreen(native),
                          ViewTarget.from_offscreen(renderfm),
                          Inputs(sample_ct, None, PRESET, model))
    try:
        settle(shown)
        assert shown.gaussians is model and lit(renderfm) > 0.05
    finally:
        shown.close()
    np.testing.assert_array_equal(renderfm.capture().max(), 0)  # close() removed RenderFM
