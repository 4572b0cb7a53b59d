"""Following the CT's volume rendering display node (issue 15): the ROI node and the Crop
checkbox redraw RenderFM without a new preparation (drafts while the ROI moves, as while the
camera moves); a preset change or a burst of Shift moves asks for one new preparation, with the
transfer function the property node holds then.

A real headless scene: the bundled sample's volume node with Slicer's default volume rendering
nodes (CreateDefaultVolumeRenderingNodes) and an ROI node; views of 64 px.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib import api  # noqa: E402
from RenderFMLib.api import CropBox  # noqa: E402
from RenderFMLib.errors import RenderFMWarning  # noqa: E402
from RenderFMLib.slicer.display_follow import DisplayFollower  # noqa: E402
from RenderFMLib.slicer.jobs import prepare  # noqa: E402
from RenderFMLib.slicer.native import preset_from_property_node  # noqa: E402
from RenderFMLib.slicer.overlay import RenderFMOverlay, ViewTarget  # noqa: E402
from RenderFMLib.slicer.roi import roi_node, set_roi  # noqa: E402
from RenderFMLib.slicer.view import OffscreenThreeDView  # noqa: E402
from RenderFMLib.transfer import load_preset  # noqa: E402

SIZE = 64
SETTLE_S = 0.25  # the overlay's; binary fractions, so "settled" compares exactly
DEBOUNCE_S = 0.5


@pytest.fixture(scope="module")
def gaussians(context, nodes):
    return prepare(context, *nodes, "CT-AAA", device="cpu")  # 5058 Gaussians: fast


@pytest.fixture
def display(context, nodes):
    """The CT's volume rendering display node, CT-AAA, cropped to an ROI around its upper half."""
    display = context.volume_rendering_logic.CreateDefaultVolumeRenderingNodes(nodes[0])
    display.GetVolumePropertyNode().Copy(context.volume_rendering_logic.GetPresetByName("CT-AAA"))
    display.SetAndObserveROINodeID(roi_node(context.scene, _upper(0.0)).GetID())
    display.SetCroppingEnabled(True)
    yield display
    context.scene.RemoveNode(display)


def _upper(lift_mm: float) -> CropBox:
    """The sample's upper part, its lower face lift_mm above the CT's centre."""
    return CropBox((0.0, 120.0, 350.0 + lift_mm), (400.0, 400.0, 200.0))


@pytest.fixture
def shown(context, gaussians, clock, monkeypatch):
    """(overlay, renders): RenderFM shown in a 64 px view on the test clock, and the
    (size, crop) of every api.render it makes from now on."""
    overlay = RenderFMOverlay(context, settle_s=SETTLE_S, clock=clock)
    view = OffscreenThreeDView(context, (SIZE, SIZE))
    view.set_camera(api.default_camera(gaussians))
    overlay.show(ViewTarget.from_offscreen(view), gaussians, draft_scale=0.5)
    renders, render = [], api.render

    def recording(gaussians, camera, size, **options):
        renders.append((size, options.get("crop")))
        return render(gaussians, camera, size, **options)

    monkeypatch.setattr(api, "render", recording)
    yield overlay, renders
    overlay.dispose()
    view.close()


def test_moving_the_roi_redraws_without_preparing(display, shown, clock) -> None:
    overlay, renders = shown
    prepared = []
    follower = DisplayFollower(display, overlay, prepared.append, debounce_s=DEBOUNCE_S,
                               clock=clock)
    assert overlay.crop == _upper(0.0)
    assert [overlay.tick(), overlay.tick()] == [1, 0]  # a draft of the new crop
    for lift in (10.0, 20.0, 30.0):  # a handle dragged: one move per timer tick
        set_roi(display.GetROINode(), _upper(lift))
        clock.now += SETTLE_S / 4
        assert overlay.tick() == 1 and follower.tick() is False
    clock.now += SETTLE_S
    assert [overlay.tick(), overlay.tick()] == [1, 0]  # one full render once still
    half, full = (SIZE // 2, SIZE // 2), (SIZE, SIZE)
    assert renders == [(half, _upper(0.0)), (half, _upper(10.0)), (half, _upper(20.0)),
                       (half, _upper(30.0)), (full, _upper(30.0))]
    assert prepared == [] and not follower.look_pending
    follower.close()


def test_the_crop_checkbox_turns_cropping_off_and_on(display, shown, clock) -> None:
    overlay, renders = shown
    follower = DisplayFollower(display, overlay, lambda preset: None, clock=clock)
    display.SetCroppingEnabled(False)
    assert overlay.crop is None
    display.SetCroppingEnabled(True)
    assert overlay.crop == _upper(0.0)
    follower.close()
    display.SetCroppingEnabled(False)
    assert overlay.crop == _upper(0.0)  # closed: no longer following


def _shift(display, hu: float) -> None:
    """What Slicer's Shift slider does: move every opacity and colour point by hu (one
    ModifiedEvent each)."""
    volume_property = display.GetVolumePropertyNode().GetVolumeProperty()
    for function, width in ((volume_property.GetScalarOpacity(), 4),
                            (volume_property.GetRGBTransferFunction(), 6)):
        points = []
        for index in range(function.GetSize()):
            point = [0.0] * width
            function.GetNodeValue(index, point)
            points.append(point)
        for index in reversed(range(len(points))) if hu > 0 else range(len(points)):
            points[index][0] += hu
            function.SetNodeValue(index, points[index])


def test_a_burst_of_shifts_prepares_once_with_the_last_transfer_function(display, shown,
                                                                         clock) -> None:
    overlay, _ = shown
    prepared = []
    follower = DisplayFollower(display, overlay, prepared.append, debounce_s=DEBOUNCE_S,
                               clock=clock)
    original = load_preset("CT-AAA")
    for _ in range(10):  # ten slider moves, 0.1 s apart: never still for DEBOUNCE_S
        _shift(display, 10.0)
        clock.now += 0.125
        assert follower.tick() is False
    clock.now += DEBOUNCE_S
    assert [follower.tick(), follower.tick()] == [True, False]
    assert len(prepared) == 1
    hu = torch.linspace(-500.0, 1500.0, 401, dtype=torch.float64)
    np.testing.assert_allclose(prepared[0].opacity(hu).numpy(),
                               original.opacity(hu - 100.0).numpy(), atol=1e-9)
    follower.close()


def test_a_preset_change_prepares_with_the_new_preset(context, display, shown, clock) -> None:
    overlay, _ = shown
    prepared = []
    follower = DisplayFollower(display, overlay, prepared.append, debounce_s=DEBOUNCE_S,
                               clock=clock)
    display.GetVolumePropertyNode().Copy(context.volume_rendering_logic.GetPresetByName("CT-Bone"))
    clock.now += DEBOUNCE_S
    assert follower.tick() is True and len(prepared) == 1
    bone, hu = load_preset("CT-Bone"), torch.linspace(-1000.0, 2000.0, 301, dtype=torch.float64)
    np.testing.assert_allclose(prepared[0].opacity(hu).numpy(), bone.opacity(hu).numpy(),
                               atol=1e-9)
    assert preset_from_property_node(display.GetVolumePropertyNode()).shade == bone.shade
    follower.close()


def test_a_box_holding_nothing_shows_an_empty_layer_and_a_note(shown, clock) -> None:
    overlay, renders = shown
    overlay.set_crop(CropBox((5000.0, 0.0, 0.0), (10.0, 10.0, 10.0)))
    clock.now += SETTLE_S
    with pytest.warns(RenderFMWarning, match="crop box holds none"):  # api.render's, logged
        assert overlay.tick() == 1 and overlay.last_error is None
    assert overlay.last_note == "nothing of the CT lies inside the crop box"
    overlay.set_crop(None)
    clock.now += SETTLE_S
    assert overlay.tick() == 1 and overlay.last_note is None
    assert [crop for _, crop in renders][-1] is None


def test_another_roi_node_is_followed_without_preparing(context, display, shown, clock) -> None:
    overlay, _ = shown
    prepared = []
    follower = DisplayFollower(display, overlay, prepared.append, debounce_s=DEBOUNCE_S,
                               clock=clock)
    other = roi_node(context.scene, _upper(40.0))
    display.SetAndObserveROINodeID(other.GetID())
    assert overlay.crop == _upper(40.0)
    set_roi(other, _upper(50.0))  # the new node is observed
    assert overlay.crop == _upper(50.0)
    clock.now += DEBOUNCE_S
    assert follower.tick() is False and prepared == []
    follower.close()
