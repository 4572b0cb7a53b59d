"""RenderFMCore on a real headless MRML scene: prepare from nodes, draw into an offscreen Slicer 3D
view through the extra layer, follow the camera node, compare with Slicer's native rendering.

The bundled sample (122 x 101 x 112 voxels of 3 mm) is a vtkMRMLScalarVolumeNode and its
TotalSegmentator segmentation a vtkMRMLSegmentationNode; views are 128 px to keep the CPU
renderer fast. Read-back pixels are compared with the native-only image of the same view.
"""

import math
import threading
import time

import numpy as np
import pytest

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib import api  # noqa: E402
from RenderFMLib.errors import RenderFMError, SegmentationError  # noqa: E402
from RenderFMLib.slicer import dependencies  # noqa: E402
from RenderFMLib.slicer.view import read_pixels  # noqa: E402
from RenderFMLib.slicer.logic import (  # noqa: E402
    Cancelled, RenderFMCore, ViewTarget, resolve_device, straight_rgba)
from RenderFMLib.slicer.native import NATIVE_METHODS, show_volume_rendering  # noqa: E402
from RenderFMLib.slicer.nodes import segmentation_node, volume_node  # noqa: E402
from RenderFMLib.slicer.view import OffscreenThreeDView  # noqa: E402

PRESET = "CT-Bone"  # for the comparison with Slicer's own rendering: 46774 Gaussians
FAST_PRESET = "CT-AAA"  # bone and contrast only, 5058 Gaussians: for everything else
SIZE = 128
SETTLE_S = 0.25  # the test clock moves in binary fractions, so "settled" compares exactly


@pytest.fixture(scope="module")
def nodes(context, sample_ct, sample_labels):
    """(CT volume node, segmentation node) of the bundled sample in the module's scene."""
    return (volume_node(context, sample_ct, "sample CT"),
            segmentation_node(context, sample_labels, "sample segmentation"))


def _prepared(context, nodes, preset):
    core = RenderFMCore(context)
    try:
        return core.prepare(*nodes, preset, device="cpu")
    finally:
        core.dispose()


@pytest.fixture(scope="module")
def gaussians(context, nodes):
    return _prepared(context, nodes, FAST_PRESET)


@pytest.fixture(scope="module")
def bone(context, nodes):
    return _prepared(context, nodes, PRESET)


@pytest.fixture
def core(context, clock, view):
    """A core on the test clock; it hides itself from the view before the view closes."""
    core = RenderFMCore(context, settle_s=SETTLE_S, clock=clock)
    yield core
    core.dispose()


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


def test_prepare_from_nodes_matches_the_api_on_the_files(gaussians, sample_ct, sample_labels):
    direct = api.prepare(sample_ct, sample_labels, FAST_PRESET)
    assert len(gaussians) == len(direct) > 1000
    assert np.array_equal(gaussians.labels.numpy(), direct.labels.numpy())
    assert np.allclose(gaussians.means.numpy(), direct.means.numpy(), atol=1e-4)  # RAS mm


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


def test_layer_shows_renderfm_over_native_volume_rendering(context, nodes, bone, core, view):
    show_volume_rendering(context, view, nodes[0], PRESET, "cpu")
    native = capture(view)
    layers = view.render_window.GetNumberOfLayers()
    core.show(ViewTarget.from_offscreen(view), bone)
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
    assert core.last_error is None and core.last_render_s > 0


def test_moving_the_camera_renders_once_per_burst(gaussians, core, view, clock):
    target = ViewTarget.from_offscreen(view)
    core.show(target, gaussians)
    assert core.tick() == 0  # nothing moved
    for burst in range(2):
        for step in range(4):  # a burst of mouse moves between two timer ticks
            move(view, gaussians, 40.0 + 10 * burst + step)
        assert [core.tick(), core.tick()] == [1, 0]  # one draft; no change since
        clock.now += SETTLE_S
        assert [core.tick(), core.tick()] == [1, 0]  # one full render once settled
    settled = read_pixels(view.render_window)
    core.hide(target)
    core.show(target, gaussians)  # a fresh full render of the same camera
    assert np.array_equal(read_pixels(view.render_window), settled)


def test_drafts_are_stretched_over_the_view_and_resizing_redraws(gaussians, core, view, clock,
                                                                monkeypatch):
    sizes, render = [], api.render  # (width, height) of every render the core asks for

    def recording(gaussians, camera, size, **options):
        sizes.append(size)
        return render(gaussians, camera, size, **options)

    monkeypatch.setattr(api, "render", recording)
    core.show(ViewTarget.from_offscreen(view), gaussians, draft_scale=0.25)
    full = read_pixels(view.render_window)
    move(view, gaussians, 30.0)  # the fixture's camera again, but a change nonetheless
    clock.now += SETTLE_S / 2
    assert core.tick() == 0  # the view already shows this camera at full resolution
    move(view, gaussians, 31.0)
    assert core.tick() == 1
    draft = read_pixels(view.render_window)
    assert draft.shape == full.shape and not np.array_equal(draft, full)
    view.render_window.SetSize(96, 112)
    assert core.tick() == 1  # a resize redraws (a draft, then the full size once settled)
    clock.now += SETTLE_S
    assert core.tick() == 1
    assert core.last_render_s is not None and read_pixels(view.render_window).shape == (112, 96, 3)
    # Full size, then drafts at a quarter of the view's size (rounded), then full size again.
    assert sizes == [(SIZE, SIZE), (SIZE // 4, SIZE // 4), (24, 28), (96, 112)]


def test_background_renders_leave_tick_to_show_finished_frames(context, gaussians, view, clock):
    core = RenderFMCore(context, settle_s=SETTLE_S, clock=clock, background=True)
    try:
        core.show(ViewTarget.from_offscreen(view), gaussians)  # the first render: at once
        before = read_pixels(view.render_window)
        shown_per_tick = []
        for step in range(3):  # three drags, each followed by ticks until its frame is shown
            move(view, gaussians, 60.0 + 5 * step)
            shown_per_tick.append(core.tick())  # starts the draft in the worker, shows nothing
            assert np.array_equal(read_pixels(view.render_window), before)
            wait_for(core)
            shown_per_tick.append(core.tick())  # shows it
            assert not np.array_equal(read_pixels(view.render_window), before)
            before = read_pixels(view.render_window)
        clock.now += SETTLE_S
        shown_per_tick += [core.tick(), wait_for(core), core.tick(), core.tick()]
        assert shown_per_tick == [0, 1] * 3 + [0, None, 1, 0]  # ..., then exactly one full render
        assert core.last_error is None
        final = read_pixels(view.render_window)
        core.hide(ViewTarget.from_offscreen(view))
        core.show(ViewTarget.from_offscreen(view), gaussians)
        assert np.array_equal(read_pixels(view.render_window), final)  # the full render it shows
    finally:
        core.dispose()


def wait_for(core, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while core.rendering():
        assert time.monotonic() < deadline, "the background render did not finish"
        time.sleep(0.01)


def test_hide_removes_the_layer_and_stops_following(gaussians, core, view):
    native = capture(view)
    target = ViewTarget.from_offscreen(view)
    core.show(target, gaussians)
    assert not np.array_equal(read_pixels(view.render_window), native)
    core.hide(target)
    core.hide(target)  # safe twice
    assert not core.is_shown(target)
    assert np.array_equal(capture(view), native)
    move(view, gaussians, 80.0)
    assert core.tick() == 0


def test_closing_the_scene_removes_every_layer(gaussians):
    from RenderFMLib.slicer.context import SlicerContext

    context = SlicerContext.headless()  # its own scene: this test closes it
    core = RenderFMCore(context)
    views = [OffscreenThreeDView(context, (64, 64)) for _ in range(3)]  # the last: no RenderFM
    try:
        targets = [ViewTarget.from_offscreen(view) for view in views]
        for view in views:
            view.set_camera(api.default_camera(gaussians))
        for target in targets[:2]:
            core.show(target, gaussians)
        context.scene.Clear(0)
        assert not any(core.is_shown(target) for target in targets)
        images = []
        for view in views:
            assert view.render_window.GetRenderers().GetNumberOfItems() == 1
            view.render_window.Render()
            images.append(read_pixels(view.render_window))
        assert all(np.array_equal(image, images[2]) for image in images[:2])
        assert core.tick() == 0
    finally:
        core.dispose()
        for view in views:
            view.close()


def test_comparison_renders_both_sides_and_names_the_native_mapper(context, nodes, bone, core,
                                                                   view):
    target = ViewTarget.from_offscreen(view)
    other = OffscreenThreeDView(context, (SIZE, SIZE), background=(0.1, 0.2, 0.3))
    try:
        here = show_volume_rendering(context, view, nodes[0], PRESET, "cpu")
        native = capture(view)
        core.show(target, bone)
        composite = read_pixels(view.render_window)
        assert not np.array_equal(composite, native)  # RenderFM drawn over Slicer's rendering
        # A single view toggled between Slicer's rendering and RenderFM's.
        toggled = core.native_vs_renderfm(target, NATIVE_METHODS["cpu"])
        assert toggled["native"] == NATIVE_METHODS["cpu"] and "CPU" in toggled["native"]
        assert math.isfinite(toggled["psnr"]) and math.isfinite(toggled["ssim"])
        # AGP against the CPU ray cast scored SSIM 0.93 at 256 px on a 3 mm CT (DESIGN.md 5);
        # measured here 0.932 / 31.4 dB at 128 px. The margin allows for other Mesa builds;
        # below 0.999 because two different renderers never agree exactly.
        assert 0.85 < toggled["ssim"] < 0.999 and toggled["psnr"] > 25.0
        assert here.GetVisibility() and core.is_shown(target)  # both sides are back:
        assert np.array_equal(read_pixels(view.render_window), composite)
        # Side by side (linked cameras): the same two images, so the very same scores.
        other.set_camera(view.camera())
        show_volume_rendering(context, other, nodes[0], PRESET, "cpu")
        here.SetVisibility(0)
        side_by_side = core.native_vs_renderfm(target, NATIVE_METHODS["cpu"],
                                               ViewTarget.from_offscreen(other))
        assert side_by_side == toggled
        print(f"native vs RenderFM at {SIZE} px: {toggled}")
    finally:
        other.close()


def test_comparison_after_a_resize_renders_at_the_new_size(gaussians, core, view):
    target = ViewTarget.from_offscreen(view)
    core.show(target, gaussians)
    view.render_window.SetSize(96, 112)  # no tick yet: the layer still holds the 128 px frame
    scores = core.native_vs_renderfm(target, NATIVE_METHODS["cpu"])
    compared = read_pixels(view.render_window)
    core.hide(target)
    core.show(target, gaussians)  # a fresh full render at 96 x 112
    assert np.array_equal(compared, read_pixels(view.render_window))
    assert core.native_vs_renderfm(target, NATIVE_METHODS["cpu"]) == scores


def test_render_errors_land_in_last_error_and_ticks_go_on(gaussians, core, view, clock, caplog):
    core.show(ViewTarget.from_offscreen(view), gaussians)
    view.camera_node.SetParallelProjection(1)
    clock.now += SETTLE_S
    assert core.tick() == 0
    assert "parallel" in core.last_error and "parallel" in caplog.text
    view.camera_node.SetParallelProjection(0)
    view.camera_node.SetPosition(math.nan, 0.0, 0.0)
    clock.now += SETTLE_S
    assert core.tick() == 0 and "finite" in core.last_error
    move(view, gaussians, 50.0)
    clock.now += SETTLE_S
    assert core.tick() == 1 and core.last_error is None


def test_hidden_groups_redraw_and_unknown_groups_change_nothing(gaussians, core, view,
                                                                without_groups):
    target = ViewTarget.from_offscreen(view)
    core.show(target, gaussians)
    everything = read_pixels(view.render_window)
    core.set_hidden_groups(["skeleton"])
    without_bones = read_pixels(view.render_window)
    assert not np.array_equal(without_bones, everything)
    with pytest.raises(SegmentationError):
        core.set_hidden_groups(["no such group"])
    assert np.array_equal(read_pixels(view.render_window), without_bones)  # nothing changed
    core.set_hidden_groups([])
    assert np.array_equal(read_pixels(view.render_window), everything)
    # What hiding must show: the Gaussians without their skeleton ones, drawn the same way.
    core.show(target, without_groups(gaussians, ["skeleton"]))
    assert np.array_equal(read_pixels(view.render_window), without_bones)


def test_cancelling_a_preparation_raises_cancelled_and_the_core_stays_usable(context, core, nodes):
    cancelled_at, started = [], threading.Event()

    def cancel_while_priming(fraction, message):
        if "priming" in message and not cancelled_at:
            started.wait(10.0)  # the worker may get here before start_prepare has returned
            cancelled_at.append(time.perf_counter())
            job.cancel()

    job = core.start_prepare(*nodes, FAST_PRESET, device="cpu", progress=cancel_while_priming)
    started.set()
    with pytest.raises(Cancelled):
        job.result(timeout=60)
    latency = time.perf_counter() - cancelled_at[0]
    assert job.done() and latency < 10.0  # the next step boundary; ~0.1-0.5 s on the sample
    print(f"cancel latency {latency:.3f} s")
    # The core stays usable; the scene is only touched in this (the GUI) thread, as MRML must be.
    threads = []
    tag = context.scene.AddObserver(context.scene.NodeAddedEvent,
                                    lambda *_: threads.append(threading.get_ident()))
    try:
        job = core.start_prepare(*nodes, FAST_PRESET, device="cpu")
        assert len(job.result(timeout=60)) > 1000 and job.done()
    finally:
        context.scene.RemoveObserver(tag)
    assert threads and set(threads) == {threading.get_ident()}  # the segmentation's export nodes
    assert job.progress[0] == 1.0 and "ready" in job.progress[1]


def test_bad_inputs_raise_one_clear_error(context, nodes, core, gaussians, view):
    with pytest.raises(RenderFMError, match="CT scalar volume"):
        core.prepare(None)
    with pytest.raises(RenderFMError, match="CT scalar volume"):
        core.start_prepare(None)  # nodes are read before the worker starts: the error is here
    with pytest.raises(RenderFMError, match="unknown segmentation"):
        core.prepare(nodes[0], "bogus", device="cpu")
    with pytest.raises(RenderFMError, match="segmentation node"):
        core.prepare(nodes[0], nodes[0], device="cpu")
    with pytest.raises(RenderFMError, match="draft scale"):
        core.show(ViewTarget.from_offscreen(view), gaussians, draft_scale=0.0)
    with pytest.raises(RenderFMError, match="not shown"):
        core.native_vs_renderfm(ViewTarget.from_offscreen(view), NATIVE_METHODS["cpu"])
    with pytest.raises(RenderFMError, match="unknown device"):
        resolve_device("tpu")


def test_cpu_fallback_says_it_is_slower():
    import torch

    assert resolve_device("cpu") == ("cpu", "running on the CPU, slower than on a CUDA GPU")
    if torch.cuda.is_available():
        assert resolve_device("auto")[0] == "cuda"
    else:
        for choice in ("auto", "cuda"):
            device, message = resolve_device(choice)
            assert device == "cpu" and message.startswith("CUDA not available")
            assert "slower" in message


def test_dependencies_import_neither_torch_nor_cupy():
    import subprocess
    import sys

    probe = ("import sys, RenderFMLib.slicer.dependencies as d; d.missing_packages(); "
             "print(sorted({'torch', 'cupy', 'vtk', 'slicer'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_dependencies_decide_without_installing():
    assert dependencies.installed("torch") and not dependencies.installed("no_such_module_here")
    assert dependencies.cupy_requirement(None) is None
    assert dependencies.cupy_requirement((10, 2)) is None
    assert dependencies.cupy_requirement((11, 8)) == "cupy-cuda11x"
    assert dependencies.cupy_requirement((12, 4)) == "cupy-cuda12x"
    assert dependencies.cupy_requirement((13, 0)) == "cupy-cuda12x"  # drivers run older builds
    missing = dependencies.missing_packages()
    assert "torch" not in missing
    if dependencies.cuda_driver_version() is None or dependencies.installed("cupy"):
        assert not any(name.startswith("cupy") for name in missing)
    else:
        assert any(name.startswith("cupy-cuda") for name in missing)


def test_slicer_installs_every_core_dependency():
    """The module installs what pyproject.toml's [project] dependencies name, nothing less."""
    import re
    import tomllib

    from RenderFMLib.resources import resource_path

    pyproject = resource_path().parent / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not a source checkout")
    listed = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", requirement)[0].lower() for requirement in listed}
    assert names == {package.lower() for package in dependencies.LIBRARY_PACKAGES.values()}
    assert all(dependencies.installed(module) for module in dependencies.LIBRARY_PACKAGES)
