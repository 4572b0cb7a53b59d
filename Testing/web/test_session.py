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
from RenderFMLib.transfer import load_preset  # noqa: E402
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


def redrawn(session: ViewerSession) -> None:
    """Poll past the overlay's settle time, so the full-size frame after a change is shown."""
    deadline = time.monotonic() + 2.0 * session.overlay.settle_s
    while time.monotonic() < deadline:
        session.poll()
        time.sleep(0.02)
    settle(session)


def drawn(image: np.ndarray, where: np.ndarray) -> float:
    """Fraction of the pixels where (bool [H, W]) that are drawn (not background black)."""
    return float((image.max(axis=2) > 10)[where].mean())


def test_a_crop_box_crops_both_views(session, views):
    from RenderFMLib.slicer.camera import camera_from_node

    context, (native, renderfm) = views
    session.render("AGP")
    settle(session)
    before = [native.capture(), renderfm.capture()]
    r0, r1, a0, a1, s0, s1 = session.bounds
    session.set_crop([r0, r1, a0, a1, 0.5 * (s0 + s1), s1])  # the upper half
    redrawn(session)
    after = [native.capture(), renderfm.capture()]
    box = api.CropBox.from_bounds([r0, r1, a0, a1, 0.5 * (s0 + s1), s1])
    inside = box.screen_mask(camera_from_node(native.camera_node), SIZE, SIZE)
    assert 0.2 < inside.mean() < 0.8  # the box's face cuts through the view
    for old, new in zip(before, after):
        assert drawn(old, ~inside) > 0.05  # drawn there before the crop
        assert drawn(new, ~inside) < 0.01  # nothing outside the box now
        assert drawn(new, inside) > 0.05  # the upper half still shows
    assert "nothing of the CT" not in session.status()
    assert "SSIM" in session.measure()  # scored over the box's pixels (SideBySide)
    session.set_crop(None)
    redrawn(session)
    assert drawn(renderfm.capture(), ~inside) > 0.05


def test_an_empty_box_is_a_note_and_bad_crops_and_shifts_are_refused(session, views):
    context, (native, renderfm) = views
    session.render("AGP")
    settle(session)
    r0, r1, a0, a1, s0, s1 = session.bounds
    session.set_crop([r1 + 50.0, r1 + 100.0, a0, a1, s0, s1])  # beside the CT
    redrawn(session)
    assert "nothing of the CT lies inside the crop box" in session.status()
    assert lit(renderfm) == 0.0 and lit(native) == 0.0
    assert session.overlay.last_error is None
    with pytest.raises(RenderFMError, match="Crop: the box is inverted: S_MIN 10 is above"):
        session.set_crop([r0, r1, a0, a1, 10.0, 5.0])
    with pytest.raises(RenderFMError, match="finite"):
        session.set_crop([r0, r1, a0, a1, float("nan"), s1])
    with pytest.raises(RenderFMError, match=r"Shift: the shift must be a number of HU from "
                                            r"-500 to 500, not 900"):
        session.set_shift(900)
    with pytest.raises(RenderFMError, match="not nan"):
        session.set_shift(float("nan"))
    with pytest.raises(RenderFMError, match="Shift: the shift must be"):
        session.set_shift("100")
    assert session.shift == 0.0


@pytest.fixture
def starts(monkeypatch) -> list:
    """The presets of the preparations the session starts, in order."""
    from RenderFMLib.web import session as module

    presets: list = []
    start_prepare = module.start_prepare
    monkeypatch.setattr(module, "start_prepare",
                        lambda *a, **k: presets.append(a[3]) or start_prepare(*a, **k))
    return presets


def test_a_shift_before_render_is_in_its_preparation(session, starts):
    from RenderFMLib.web.session import SHIFT_DEBOUNCE_S

    session.set_shift(-100)
    session.render("AGP")
    settle(session)
    time.sleep(SHIFT_DEBOUNCE_S)
    settle(session)
    assert len(starts) == 1  # the Render, none after it for the same shift
    assert [p[0] for p in starts[0].scalar_opacity] == pytest.approx(
        [p[0] - 100 for p in load_preset(PRESET).scalar_opacity], abs=1e-3)
    assert session.status().startswith("ready for a shift of -100 HU · ")


def test_a_burst_of_shifts_prepares_again_once(session, views, starts):
    from RenderFMLib.slicer.native import preset_from_property_node
    from RenderFMLib.web import session as module

    context, (native, renderfm) = views
    session.render("AGP")
    settle(session)
    starts.clear()
    first, shown = session.gaussians, native.capture()
    base = preset_from_property_node(session._own.GetVolumePropertyNode())
    for hu in (40, 80, 120, 160, 200):  # a drag of the slider, faster than the debounce
        session.set_shift(hu)
        session.poll()
    assert starts == [] and "shift +200 HU: RenderFM prepares again" in session.status()
    assert (native.capture() != shown).any(axis=2).mean() > 0.02  # Slicer's side at once
    time.sleep(module.SHIFT_DEBOUNCE_S)
    session.poll()
    assert len(starts) == 1 and session.preparing
    assert session.progress[1].startswith("re-preparing RenderFM for the shift of +200 HU")
    settle(session)
    assert len(starts) == 1 and session.gaussians is not first
    assert session.status().startswith("ready for a shift of +200 HU · ")
    # The native property node (shared by Slicer's side of the comparison) moved by 200 HU.
    for display in (session._own, session._comparison._display):
        moved = preset_from_property_node(display.GetVolumePropertyNode())
        np.testing.assert_allclose([p[0] for p in moved.scalar_opacity],
                                   [p[0] + 200 for p in base.scalar_opacity], atol=1e-3)
    assert [p[0] for p in starts[0].scalar_opacity] == \
        pytest.approx([p[0] + 200 for p in base.scalar_opacity], abs=1e-3)
