"""Preparing Gaussians from scene nodes (RenderFMLib/slicer/jobs.py) on a real headless MRML
scene: the same Gaussians as the API from the files, Cancel at the next step, the scene touched
only in the calling thread, one clear error for bad nodes. Fine-tuning after AGP in the worker:
the job's Gaussians are the fine-tuned ones, its progress maps AGP and fine-tuning onto one bar
with the time left, its summary names the time and the held-out PSNR, and Cancel shows nothing
new.

Fine-tuning is kept tiny for 2 CPU cores: a 40-voxel cube cut from the middle of the bundled
sample (CT-AAA: a few hundred Gaussians), targets of 64 px, 5 steps.
"""

import re
import threading
import time

import numpy as np
import pytest
import torch

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib import api  # noqa: E402
from RenderFMLib.errors import RenderFMError  # noqa: E402
from RenderFMLib.optimize.evaluate import Scores  # noqa: E402
from RenderFMLib.slicer.jobs import (  # noqa: E402
    AGP_SHARE,
    Cancelled,
    Finetuned,
    FinetuneSettings,
    prepare,
    start_prepare,
)
from RenderFMLib.slicer.nodes import volume_node  # noqa: E402
from RenderFMLib.slicer.overlay import RenderFMOverlay, ViewTarget  # noqa: E402
from RenderFMLib.slicer.view import OffscreenThreeDView, read_pixels  # noqa: E402
from RenderFMLib.volume import Volume  # noqa: E402

PRESET = "CT-AAA"
SIDE = 40  # voxels of the cube cut from the sample
TINY = {"size": 64, "heldout_size": 64, "crop": 32, "iterations": 5}
CPU_MESSAGE = "running on the CPU, slower than on a CUDA GPU"


@pytest.fixture(scope="module")
def small_ct(context, sample_ct):
    """A volume node of a SIDE-voxel cube from the middle of the sample CT (3 mm voxels)."""
    k, j, i = (n // 2 - SIDE // 2 for n in sample_ct.shape)
    shift = np.eye(4)
    shift[:3, 3] = (i, j, k)
    cube = sample_ct.array[k:k + SIDE, j:j + SIDE, i:i + SIDE].clone()
    return volume_node(context, Volume(cube, sample_ct.ijk_to_ras @ shift), "small CT")


@pytest.fixture(scope="module")
def agp(context, small_ct):
    """The small CT's AGP Gaussians, as a preparation without fine-tuning makes them."""
    return prepare(context, small_ct, None, PRESET, device="cpu")


@pytest.fixture
def overlay(context, clock, view):
    """An overlay on the test clock; it hides itself from the view before the view closes."""
    overlay = RenderFMOverlay(context, clock=clock)
    yield overlay
    overlay.dispose()


@pytest.fixture
def view(context, agp):
    """A 64 px offscreen 3D view showing the small CT's AGP Gaussians from the front."""
    view = OffscreenThreeDView(context, (64, 64), background=(0.1, 0.2, 0.3))
    view.set_camera(api.default_camera(agp, azimuth=30.0, elevation=10.0))
    yield view
    view.close()


def test_finetuning_gives_the_gaussians_to_show_and_a_summary(context, small_ct, agp, overlay,
                                                                  view):
    target = ViewTarget.from_offscreen(view)
    overlay.show(target, agp)
    agp_picture = read_pixels(view.render_window)
    steps = []
    job = start_prepare(context, small_ct, None, PRESET, device="cpu",
                        finetune=FinetuneSettings(None, TINY),
                        progress=lambda *step: steps.append(step))
    tuned = job.result(timeout=300)
    result = job.finetuned.result
    assert tuned is result.gaussians and tuned is not agp
    assert (result.stopped, result.steps, result.kept_start) == ("iterations", 5, False)
    assert len(tuned) == len(agp) and not torch.equal(tuned.means, agp.means)
    overlay.show(target, tuned)  # as the module shows a finished preparation
    assert not np.array_equal(read_pixels(view.render_window), agp_picture)

    # AGP fills the first AGP_SHARE of the bar, fine-tuning the rest (no budget: no time left).
    assert steps[:5] == [(0.0, CPU_MESSAGE), (0.0, "reading the CT"),
                         (pytest.approx(0.4 * AGP_SHARE), "priming Gaussians"),
                         (pytest.approx(0.9 * AGP_SHARE), "precomputing slicing terms"),
                         (AGP_SHARE, f"{len(agp)} Gaussians")]
    assert steps[-1] == (1.0, f"{len(tuned)} Gaussians ready")
    tuning = steps[5:-1]
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)
    assert AGP_SHARE < tuning[0][0] and tuning[-1][0] < 1.0
    messages = [message for _, message in tuning]
    assert messages[:6] == [f"fine-tuning: held-out view {n}/6" for n in range(1, 7)]
    assert [re.fullmatch(r"fine-tuning: step (\d), loss [\d.]+, PSNR [\d.]+ dB, (\d+) Gaussians",
                         message).groups() for message in messages[6:]] == [
        (str(n), str(len(agp))) for n in range(1, 6)]

    assert job.finetuned.summary() == (
        f"fine-tuned in {result.seconds:.0f} s, 5 steps: held-out PSNR {result.before.psnr:.1f} "
        f"-> {result.after.psnr:.1f} dB ({len(agp):,} -> {len(tuned):,} Gaussians)")
    assert result.after.loss < result.before.loss


@pytest.mark.parametrize("cancel_at", ["held-out view 1/6", "step 1,"],
                         ids=["rendering held-out targets", "optimising"])
def test_cancel_while_finetuning_keeps_the_picture_and_reports_cancelled(context, small_ct, agp,
                                                                         overlay, view, clock,
                                                                         cancel_at):
    target = ViewTarget.from_offscreen(view)
    overlay.show(target, agp)
    picture = read_pixels(view.render_window)
    tuning = []

    def one_second_per_step_then_cancel(fraction, message):
        if message.startswith("fine-tuning: "):
            tuning.append(message)
            clock.now += 1.0
        if cancel_at in message:
            job.cancel()

    job = start_prepare(context, small_ct, None, PRESET, device="cpu", clock=clock,
                        finetune=FinetuneSettings(600.0, TINY),
                        progress=one_second_per_step_then_cancel)
    with pytest.raises(Cancelled, match="preparation cancelled"):
        job.result(timeout=300)
    assert job.finetuned is None
    assert cancel_at in tuning[-1] and job.progress[1] == tuning[-1]  # nothing after Cancel
    assert [message.rpartition(", about ")[2] for message in tuning] == [
        f"{600 - n} s left" for n in range(len(tuning))]
    assert overlay.tick() == 0 and np.array_equal(read_pixels(view.render_window), picture)


@pytest.mark.parametrize("kept_start, line", [
    (False, "fine-tuned in 212 s, 850 steps: held-out PSNR 31.8 -> 34.6 dB (46,774 -> {n} "
            "Gaussians)"),
    (True, "fine-tuned in 212 s, 850 steps: held-out PSNR 31.8 -> 34.6 dB; the held-out loss did "
           "not improve, so the AGP Gaussians stay (46,774)")])
def test_the_summary_names_time_steps_psnr_and_counts(agp, kept_start, line):
    before = Scores(0.2, 31.84, 0.9, 0.8, ())
    after = Scores(0.3 if kept_start else 0.1, 34.56, 0.95, 0.9, ())
    result = api.FinetuneResult(agp, before, after, 850, 212.4, "budget", kept_start)
    assert Finetuned(result, 46_774).summary() == line.format(n=f"{len(agp):,}")


def test_prepare_from_nodes_matches_the_api_on_the_files(context, nodes, sample_ct, sample_labels):
    from_nodes = prepare(context, *nodes, PRESET, device="cpu")
    direct = api.prepare(sample_ct, sample_labels, PRESET)
    assert len(from_nodes) == len(direct) > 1000
    assert np.array_equal(from_nodes.labels.numpy(), direct.labels.numpy())
    assert np.allclose(from_nodes.means.numpy(), direct.means.numpy(), atol=1e-4)  # RAS mm


def test_cancelling_a_preparation_raises_cancelled_and_the_scene_stays_usable(context, nodes):
    cancelled_at, started = [], threading.Event()

    def cancel_while_priming(fraction, message):
        if "priming" in message and not cancelled_at:
            started.wait(10.0)  # the worker may get here before start_prepare has returned
            cancelled_at.append(time.perf_counter())
            job.cancel()

    job = start_prepare(context, *nodes, PRESET, device="cpu", progress=cancel_while_priming)
    started.set()
    with pytest.raises(Cancelled):
        job.result(timeout=60)
    latency = time.perf_counter() - cancelled_at[0]
    assert job.done() and latency < 10.0  # the next step boundary; ~0.1-0.5 s on the sample
    print(f"cancel latency {latency:.3f} s")
    # The scene stays usable; it is only touched in this (the GUI) thread, as MRML must be.
    threads = []
    tag = context.scene.AddObserver(context.scene.NodeAddedEvent,
                                    lambda *_: threads.append(threading.get_ident()))
    try:
        job = start_prepare(context, *nodes, PRESET, device="cpu")
        assert len(job.result(timeout=60)) > 1000 and job.done()
    finally:
        context.scene.RemoveObserver(tag)
    assert threads and set(threads) == {threading.get_ident()}  # the segmentation's export nodes
    assert job.progress[0] == 1.0 and "ready" in job.progress[1]


def test_bad_inputs_raise_one_clear_error(context, nodes):
    with pytest.raises(RenderFMError, match="CT scalar volume"):
        prepare(context, None)
    with pytest.raises(RenderFMError, match="CT scalar volume"):
        start_prepare(context, None)  # nodes are read before the worker starts: the error is here
    with pytest.raises(RenderFMError, match="unknown segmentation"):
        prepare(context, nodes[0], "bogus", device="cpu")
    with pytest.raises(RenderFMError, match="segmentation node"):
        prepare(context, nodes[0], nodes[0], device="cpu")
    with pytest.raises(RenderFMError, match="unknown device"):
        prepare(context, nodes[0], device="tpu")
