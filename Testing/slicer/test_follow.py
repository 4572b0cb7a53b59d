"""CameraFollower: camera node changes coalesced into draft renders, then exactly one full render.

A real vtkMRMLCameraNode in a real MRML scene; time comes from an injected clock (no sleeps).
"""

import pytest

pytest.importorskip("slicer")

from RenderFMLib.camera import orbit_camera  # noqa: E402
from RenderFMLib.errors import CameraError  # noqa: E402
from RenderFMLib.slicer.camera import set_camera_node  # noqa: E402
from RenderFMLib.slicer.follow import CameraFollower  # noqa: E402

SETTLE_S = 0.25  # clock values are binary fractions, so "settled" is compared exactly
CENTRE, RADIUS = (10.0, -20.0, 30.0), 100.0


@pytest.fixture
def camera_node():
    import slicer

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLCameraNode", "camera")
    set_camera_node(node, orbit_camera(CENTRE, RADIUS, 0.0, 0.0))
    yield node
    scene.Clear(1)


@pytest.fixture
def follow(camera_node, clock):
    """(follower, clock, renders: list of (camera, draft))."""
    renders = []
    follower = CameraFollower(camera_node, lambda camera, draft: renders.append((camera, draft)),
                              settle_s=SETTLE_S, clock=clock)
    yield follower, clock, renders
    follower.close()


def test_clean_follower_renders_nothing(follow):
    follower, clock, renders = follow
    clock.now += 10.0
    assert [follower.tick() for _ in range(3)] == [None, None, None]
    assert renders == [] and not follower.dirty


def test_drag_gives_drafts_then_exactly_one_full_render_of_the_last_camera(follow, camera_node):
    follower, clock, renders = follow
    results = []
    for step in range(10):  # a 10-step drag: one camera node change per mouse move
        clock.now += 0.015625  # 64 mouse moves per second
        set_camera_node(camera_node, orbit_camera(CENTRE, RADIUS, 3.0 * (step + 1), 0.0))
        results += [follower.tick(), follower.tick()]  # a timer may tick twice per mouse move
    drafts = results.count("draft")
    assert results.count("full") == 0 and 1 <= drafts <= len(results)
    assert drafts == 10  # each move drawn once; the extra ticks see nothing new and draw nothing
    assert all(draft for _, draft in renders)
    clock.now += SETTLE_S / 2
    assert follower.tick() is None  # not settled yet, and the draft shows the latest camera
    clock.now += SETTLE_S / 2
    assert follower.tick() == "full"
    clock.now += 5.0
    assert [follower.tick() for _ in range(5)] == [None] * 5
    assert [draft for _, draft in renders].count(False) == 1
    last = orbit_camera(CENTRE, RADIUS, 30.0, 0.0)
    assert renders[-1][0].position == pytest.approx(last.position, abs=1e-9)
    assert renders[-1][0].view_up == pytest.approx(last.view_up, abs=1e-9)


def test_changes_between_two_ticks_coalesce_into_one_render(follow, camera_node):
    follower, clock, renders = follow
    for step in range(5):
        set_camera_node(camera_node, orbit_camera(CENTRE, RADIUS, step, 0.0))
    assert follower.tick() == "draft"
    clock.now += SETTLE_S
    assert follower.tick() == "full"
    assert len(renders) == 2


def test_a_change_after_the_full_render_starts_a_new_burst(follow, camera_node):
    follower, clock, renders = follow
    follower.mark_dirty()
    clock.now += SETTLE_S
    assert follower.tick() == "full"
    set_camera_node(camera_node, orbit_camera(CENTRE, RADIUS, 45.0, 0.0))
    assert follower.tick() == "draft"
    clock.now += SETTLE_S
    assert [follower.tick(), follower.tick()] == ["full", None]


def test_a_camera_that_stops_before_the_next_tick_gets_only_the_full_render(follow, camera_node):
    follower, clock, renders = follow
    set_camera_node(camera_node, orbit_camera(CENTRE, RADIUS, 20.0, 0.0))
    clock.now += SETTLE_S + 0.125
    assert follower.tick() == "full"
    assert [draft for _, draft in renders] == [False]


def test_closed_follower_stops_reacting(follow, camera_node):
    follower, clock, renders = follow
    observers = camera_node.HasObserver("ModifiedEvent")
    follower.close()
    follower.close()  # idempotent
    assert observers and not camera_node.HasObserver("ModifiedEvent")
    set_camera_node(camera_node, orbit_camera(CENTRE, RADIUS, 90.0, 0.0))
    clock.now += 10.0
    assert follower.tick() is None and renders == []


def test_render_errors_propagate_and_a_failed_full_render_is_not_retried(camera_node, clock):
    calls = []

    def failing(camera, draft):
        calls.append(draft)
        raise RuntimeError("render failed")

    follower = CameraFollower(camera_node, failing, settle_s=SETTLE_S, clock=clock)
    follower.mark_dirty()
    with pytest.raises(RuntimeError):
        follower.tick()  # the draft fails; the full render is still due
    clock.now += SETTLE_S
    with pytest.raises(RuntimeError):
        follower.tick()
    assert follower.tick() is None and calls == [True, False]
    follower.close()


def test_parallel_projection_camera_raises_camera_error(follow, camera_node):
    follower, clock, renders = follow
    camera_node.SetParallelProjection(1)
    clock.now += SETTLE_S
    with pytest.raises(CameraError, match="parallel"):
        follower.tick()
    assert renders == []


def test_a_change_that_leaves_the_view_as_drawn_renders_nothing(follow, camera_node):
    follower, clock, renders = follow
    follower.render_now()
    assert [draft for _, draft in renders] == [False]
    camera_node.GetCamera().SetClippingRange(1.0, 5000.0)  # fires the node's ModifiedEvent
    assert follower.dirty
    assert follower.tick() is None
    clock.now += SETTLE_S
    assert follower.tick() is None and not follower.dirty and len(renders) == 1


def test_mark_dirty_redraws_an_unchanged_camera(follow):
    follower, clock, renders = follow
    follower.render_now()
    follower.mark_dirty()
    assert follower.tick() == "draft"
    clock.now += SETTLE_S
    assert follower.tick() == "full"
    assert [draft for _, draft in renders] == [False, True, False]
