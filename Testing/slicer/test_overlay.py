"""RenderFMOverlay on a real headless MRML scene: draw into an offscreen Slicer 3D view through the
extra layer, follow the camera node, compare with Slicer's native rendering.

The bundled sample (122 x 101 x 112 voxels of 3 mm) is a vtkMRMLScalarVolumeNode and its
TotalSegmentator segmentation a vtkMRMLSegmentationNode; views are 128 px to keep the CPU
renderer fast. Read-back pixels are compared with the native-only image of the same view.
"""

import math
import time

import numpy as np
import pytest

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib import api  # noqa: E402
from RenderFMLib.errors import RenderFMError, SegmentationError  # noqa: E402
from RenderFMLib.slicer.jobs import prepare  # noqa: E402
from RenderFMLib.slicer.native import NATIVE_METHODS, show_volume_rendering  # noqa: E402
from RenderFMLib.slicer.overlay import RenderFMOverlay, ViewTarget, straight_rgba  # noqa: E402
from RenderFMLib.slicer.side_by_side import native_vs_renderfm  # noqa: E402
from RenderFMLib.slicer.view import OffscreenThreeDView, read_pixels  # noqa: E402

PRESET = "CT-Bone"  # for the comparison with Slicer's own rendering: 46774 Gaussians
FAST_PRESET = "CT-AAA"  # bone and contrast only, 5058 Gaussians: for everything else
SIZE = 128
SETTLE_S = 0.25  # the test clock moves in binary fractions, so "settled" compares exactly


@pytest.fixture(scope="module")
def gaussians(context, nodes):
    return prepare(context, *nodes, FAST_PRESET, device="cpu")


@pytest.fixture(scope="module")
def bone(context, nodes):
    return prepare(context, *nodes, PRESET, device="cpu")


@pytest.fixture
def overlay(context, clock, view):
    """An overlay on the test clock; it hides itself from the view before the view closes."""
    overlay = RenderFMOverlay(context, settle_s=SETTLE_S, clock=clock)
    yield overlay
    overlay.dispose()


@pytest.fixture
def view(context, gaussians):
    """A 128 px offscreen 3D view looking at the sample from the front."""
    view = OffscreenThreeDView(context, (SIZE, SIZE), background=(0.1, 0.2, 0.3))
    view.set_camera(api.default_camera(gaussians, azimuth=30.0, elevation=10.0))
    yield view
    view.close()


def capture(view) -> np.ndarray:
    view.render()
    return read_pixels(view.render_window)


def move(view, gaussians, azimuth: float) -> None:
    """Set the view's camera node (one ModifiedEvent) to an orbit position."""
    view.set_camera(api.default_camera(gaussians, azimuth=azimuth, elevation=10.0))


def test_straight_rgba_divides_premultiplied_colour_by_alpha():
    import torch

    rgb = torch.tensor([[[0.25, 0.1, 0.5],  # half covered: colour / 0.5
                         [1.2, 0.3, 0.0],  # opaque, shading lifted red above 1: clipped
                         [0.0, 0.0, 0.0],  # nothing drawn
                         [0.2, 0.2, 0.2]]],  # alpha 0 (a background): transparent black
                       requires_grad=True)  # frames come from a differentiable render
    alpha = torch.tensor([[0.5, 1.0, 0.0, 0.0]])
    rgba = straight_rgba(api.Frame(rgb, alpha, torch.zeros_like(alpha)))
    assert rgba.dtype == np.float32 and rgba.shape == (1, 4, 4)
    expected = [[[0.5, 0.2, 1.0, 0.5], [1.0, 0.3, 0.0, 1.0], [0.0] * 4, [0.0] * 4]]
    np.testing.assert_allclose(rgba, expected, atol=1e-7)  # float32 rounding of 0.1 / 0.5


def test_layer_shows_renderfm_over_native_volume_rendering(context, nodes, bone, overlay, view):
    show_volume_rendering(context, view, nodes[0], PRESET, "cpu")
    native = capture(view)
    layers = view.render_window.GetNumberOfLayers()
    overlay.show(ViewTarget.from_offscreen(view), bone)
    assert view.render_window.GetNumberOfLayers() == layers + 1
    shown = read_pixels(view.render_window)
    frame = api.render(bone, view.camera(), SIZE)  # what the layer must hold
    alpha = frame.alpha.numpy().astype(np.float64)
    empty, partial = alpha == 0.0, (alpha > 0.1) & (alpha < 0.9)
    # Untouched pixels, and enough half-covered ones to tell straight from premultiplied colour.
    assert empty.mean() > 0.1 and partial.sum() > 100 and (alpha > 0.9).mean() > 0.1
    assert np.array_equal(shown[empty], native[empty])
    # Over the native image: a c + (1 - a) native, c the straight colour (the frame's rgb,
    # premultiplied on black, divided by a), clipped to what a screen shows. Within 2 grey levels:
    # the layer stores c and a in 8 bits (each off by at most half a level, moving the blend by
    # at most 0.5 level each) and the blend itself is stored in 8 bits (at most 1 level).
    a = alpha[..., None]
    colour = np.clip(frame.rgb.numpy() / np.maximum(a, 1e-12), 0.0, 1.0)
    expected = 255.0 * a * colour + (1.0 - a) * native
    error = np.abs(shown - expected).max()
    assert error <= 2.0, f"{error:.1f} grey levels off"
    assert overlay.last_error is None and overlay.last_render_s > 0


def test_moving_the_camera_renders_once_per_burst(gaussians, overlay, view, clock):
    target = ViewTarget.from_offscreen(view)
    overlay.show(target, gaussians)
    assert overlay.tick() == 0  # nothing moved
    for burst in range(2):
        for step in range(4):  # a burst of mouse moves between two timer ticks
            move(view, gaussians, 40.0 + 10 * burst + step)
        assert [overlay.tick(), overlay.tick()] == [1, 0]  # one draft; no change since
        clock.now += SETTLE_S
        assert [overlay.tick(), overlay.tick()] == [1, 0]  # one full render once settled
    settled = read_pixels(view.render_window)
    overlay.hide(target)
    overlay.show(target, gaussians)  # a fresh full render of the same camera
    assert np.array_equal(read_pixels(view.render_window), settled)


def test_drafts_are_stretched_over_the_view_and_resizing_redraws(gaussians, overlay, view, clock,
                                                                monkeypatch):
    sizes, render = [], api.render  # (width, height) of every render the overlay asks for

    def recording(gaussians, camera, size, **options):
        sizes.append(size)
        return render(gaussians, camera, size, **options)

    monkeypatch.setattr(api, "render", recording)
    overlay.show(ViewTarget.from_offscreen(view), gaussians, draft_scale=0.25)
    full = read_pixels(view.render_window)
    move(view, gaussians, 30.0)  # the fixture's camera again, but a change nonetheless
    clock.now += SETTLE_S / 2
    assert overlay.tick() == 0  # the view already shows this camera at full resolution
    move(view, gaussians, 31.0)
    assert overlay.tick() == 1
    draft = read_pixels(view.render_window)
    assert draft.shape == full.shape and not np.array_equal(draft, full)
    view.render_window.SetSize(96, 112)
    assert overlay.tick() == 1  # a resize redraws (a draft, then the full size once settled)
    clock.now += SETTLE_S
    assert overlay.tick() == 1
    assert overlay.last_render_s is not None
    assert read_pixels(view.render_window).shape == (112, 96, 3)
    # Full size, then drafts at a quarter of the view's size (rounded), then full size again.
    assert sizes == [(SIZE, SIZE), (SIZE // 4, SIZE // 4), (24, 28), (96, 112)]


def test_background_renders_leave_tick_to_show_finished_frames(context, gaussians, view, clock):
    overlay = RenderFMOverlay(context, settle_s=SETTLE_S, clock=clock, background=True)
    try:
        overlay.show(ViewTarget.from_offscreen(view), gaussians)  # the first render: at once
        before = read_pixels(view.render_window)
        shown_per_tick = []
        for step in range(3):  # three drags, each followed by ticks until its frame is shown
            move(view, gaussians, 60.0 + 5 * step)
            shown_per_tick.append(overlay.tick())  # starts the draft in the worker, shows nothing
            assert np.array_equal(read_pixels(view.render_window), before)
            wait_for(overlay)
            shown_per_tick.append(overlay.tick())  # shows it
            assert not np.array_equal(read_pixels(view.render_window), before)
            before = read_pixels(view.render_window)
        clock.now += SETTLE_S
        shown_per_tick += [overlay.tick(), wait_for(overlay), overlay.tick(), overlay.tick()]
        assert shown_per_tick == [0, 1] * 3 + [0, None, 1, 0]  # ..., then exactly one full render
        assert overlay.last_error is None
        final = read_pixels(view.render_window)
        overlay.hide(ViewTarget.from_offscreen(view))
        overlay.show(ViewTarget.from_offscreen(view), gaussians)
        assert np.array_equal(read_pixels(view.render_window), final)  # the full render it shows
    finally:
        overlay.dispose()


def wait_for(overlay, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while overlay.rendering():
        assert time.monotonic() < deadline, "the background render did not finish"
        time.sleep(0.01)


def test_hide_removes_the_layer_and_stops_following(gaussians, overlay, view):
    native = capture(view)
    target = ViewTarget.from_offscreen(view)
    overlay.show(target, gaussians)
    assert not np.array_equal(read_pixels(view.render_window), native)
    overlay.hide(target)
    overlay.hide(target)  # safe twice
    assert not overlay.is_shown(target)
    assert np.array_equal(capture(view), native)
    move(view, gaussians, 80.0)
    assert overlay.tick() == 0


def test_closing_the_scene_removes_every_layer(gaussians):
    from RenderFMLib.slicer.context import SlicerContext

    context = SlicerContext.headless()  # its own scene: this test closes it
    overlay = RenderFMOverlay(context)
    views = [OffscreenThreeDView(context, (64, 64)) for _ in range(3)]  # the last: no RenderFM
    try:
        targets = [ViewTarget.from_offscreen(view) for view in views]
        for view in views:
            view.set_camera(api.default_camera(gaussians))
        for target in targets[:2]:
            overlay.show(target, gaussians)
        context.scene.Clear(0)
        assert not any(overlay.is_shown(target) for target in targets)
        images = []
        for view in views:
            assert view.render_window.GetRenderers().GetNumberOfItems() == 1
            view.render_window.Render()
            images.append(read_pixels(view.render_window))
        assert all(np.array_equal(image, images[2]) for image in images[:2])
        assert overlay.tick() == 0
    finally:
        overlay.dispose()
        for view in views:
            view.close()


def test_comparison_renders_both_sides_and_names_the_native_mapper(context, nodes, bone, overlay,
                                                                   view):
    target = ViewTarget.from_offscreen(view)
    other = OffscreenThreeDView(context, (SIZE, SIZE), background=(0.1, 0.2, 0.3))
    try:
        here = show_volume_rendering(context, view, nodes[0], PRESET, "cpu")
        native = capture(view)
        overlay.show(target, bone)
        composite = read_pixels(view.render_window)
        assert not np.array_equal(composite, native)  # RenderFM drawn over Slicer's rendering
        # A single view toggled between Slicer's rendering and RenderFM's.
        toggled = native_vs_renderfm(overlay, target, NATIVE_METHODS["cpu"])
        assert toggled["native"] == NATIVE_METHODS["cpu"] and "CPU" in toggled["native"]
        assert math.isfinite(toggled["psnr"]) and math.isfinite(toggled["ssim"])
        # AGP against the CPU ray cast scored SSIM 0.93 at 256 px on a 3 mm CT (DESIGN.md 5);
        # measured here 0.932 / 31.4 dB at 128 px. The margin allows for other Mesa builds;
        # below 0.999 because two different renderers never agree exactly.
        assert 0.85 < toggled["ssim"] < 0.999 and toggled["psnr"] > 25.0
        assert here.GetVisibility() and overlay.is_shown(target)  # both sides are back:
        assert np.array_equal(read_pixels(view.render_window), composite)
        # Side by side (linked cameras): the same two images, so the very same scores.
        other.set_camera(view.camera())
        show_volume_rendering(context, other, nodes[0], PRESET, "cpu")
        here.SetVisibility(0)
        side_by_side = native_vs_renderfm(overlay, target, NATIVE_METHODS["cpu"],
                                               ViewTarget.from_offscreen(other))
        assert side_by_side == toggled
        print(f"native vs RenderFM at {SIZE} px: {toggled}")
    finally:
        other.close()


def test_comparison_after_a_resize_renders_at_the_new_size(gaussians, overlay, view):
    target = ViewTarget.from_offscreen(view)
    overlay.show(target, gaussians)
    view.render_window.SetSize(96, 112)  # no tick yet: the layer still holds the 128 px frame
    scores = native_vs_renderfm(overlay, target, NATIVE_METHODS["cpu"])
    compared = read_pixels(view.render_window)
    overlay.hide(target)
    overlay.show(target, gaussians)  # a fresh full render at 96 x 112
    assert np.array_equal(compared, read_pixels(view.render_window))
    assert native_vs_renderfm(overlay, target, NATIVE_METHODS["cpu"]) == scores


def test_render_errors_land_in_last_error_and_ticks_go_on(gaussians, overlay, view, clock, caplog):
    overlay.show(ViewTarget.from_offscreen(view), gaussians)
    view.camera_node.SetParallelProjection(1)
    clock.now += SETTLE_S
    assert overlay.tick() == 0
    assert "parallel" in overlay.last_error and "parallel" in caplog.text
    view.camera_node.SetParallelProjection(0)
    view.camera_node.SetPosition(math.nan, 0.0, 0.0)
    clock.now += SETTLE_S
    assert overlay.tick() == 0 and "finite" in overlay.last_error
    move(view, gaussians, 50.0)
    clock.now += SETTLE_S
    assert overlay.tick() == 1 and overlay.last_error is None


def test_hidden_groups_redraw_and_unknown_groups_change_nothing(gaussians, overlay, view,
                                                                without_groups):
    target = ViewTarget.from_offscreen(view)
    overlay.show(target, gaussians)
    everything = read_pixels(view.render_window)
    overlay.set_hidden_groups(["skeleton"])
    without_bones = read_pixels(view.render_window)
    assert not np.array_equal(without_bones, everything)
    with pytest.raises(SegmentationError):
        overlay.set_hidden_groups(["no such group"])
    assert np.array_equal(read_pixels(view.render_window), without_bones)  # nothing changed
    overlay.set_hidden_groups([])
    assert np.array_equal(read_pixels(view.render_window), everything)
    # What hiding must show: the Gaussians without their skeleton ones, drawn the same way.
    overlay.show(target, without_groups(gaussians, ["skeleton"]))
    assert np.array_equal(read_pixels(view.render_window), without_bones)


def test_bad_inputs_raise_one_clear_error(overlay, gaussians, view):
    with pytest.raises(RenderFMError, match="draft scale"):
        overlay.show(ViewTarget.from_offscreen(view), gaussians, draft_scale=0.0)
    with pytest.raises(RenderFMError, match="not shown"):
        native_vs_renderfm(overlay, ViewTarget.from_offscreen(view), NATIVE_METHODS["cpu"])
