"""dvr's two ray marchers (groundtruth/dvr_march.py): the CPU library's loop against its PyTorch
reference on the bundled CT, the empty cells and bricks it skips, and the choice between them."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from RenderFMLib.camera import orbit_camera
from RenderFMLib.errors import RenderFMError
from RenderFMLib.groundtruth import dvr_march
from RenderFMLib.groundtruth.dvr import DvrScene, render_dvr
from RenderFMLib.render.cpu import available
from RenderFMLib.resources import resource_path
from RenderFMLib.transfer import Preset, load_preset, transparent_below
from RenderFMLib.volume import Volume, read_ct

pytestmark = pytest.mark.skipif(available() is not None, reason=f"no CPU library: {available()}")

WHITE = ((-3000.0, 1.0, 1.0, 1.0), (3000.0, 1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def sample_ct() -> Volume:
    return read_ct(resource_path("sample", "ct.nii.gz"))


def _edges_only() -> Preset:
    """A shaded preset whose gradient opacity varies (no bundled CT preset's does): the |grad|
    channel too."""
    base = load_preset("CT-Bone")
    return dataclasses.replace(base, name="edges", gradient_opacity=((0.0, 0.0), (80.0, 1.0)))


@pytest.mark.parametrize("preset", ["CT-Bone", "CT-AAA", "CT-Chest-Contrast-Enhanced", "edges"])
def test_the_cpu_marcher_draws_what_the_reference_draws(sample_ct, preset):
    """Frames (96 px) and a 128 px window of a 512 px view, rgb and alpha: 99.9 % of the values
    within 1e-5 (the same samples; float32 products of transmittance in another order; measured:
    mean 3e-8), all within 1e-3 + 1e-5: where a ray's transmittance lies within rounding of
    1 - early_stop, one marcher takes one more sample than the other, which moves the pixel by
    at most that much (measured: 7e-4 once in 12 views)."""
    look = _edges_only() if preset == "edges" else load_preset(preset)
    scenes = [DvrScene(sample_ct, look, backend=backend) for backend in ("cpu", "torch")]
    for azimuth, elevation, size, window in ((30, 10, 96, None), (200, -35, 512, (192, 192, 128))):
        camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), azimuth,
                              elevation)
        ours, reference = (scene.render(camera, size, window=window) for scene in scenes)
        assert reference.alpha.max() > 0.5
        for name in ("rgb", "alpha"):
            err = (getattr(ours, name) - getattr(reference, name)).abs()
            assert (err > 1e-5).float().mean() <= 1e-3, (name, float(err.max()))
            assert err.max() <= 1e-3 + 1e-5, name


def test_empty_cells_are_the_invisible_ones_and_skipping_them_changes_no_bit(sample_ct):
    """CT-Bone shows nothing below -16 HU: on the sample most cells are air and fat, and the CPU
    marcher with them skipped gives the same bits as without."""
    scene = DvrScene(sample_ct, "CT-Bone", backend="cpu")
    empty = scene.geometry.empty
    assert empty is not None and empty.shape == tuple(n - 1 for n in sample_ct.array.shape)
    hu = sample_ct.array
    corners = torch.stack([hu[k:k + hu.shape[0] - 1, j:j + hu.shape[1] - 1, i:i + hu.shape[2] - 1]
                           for k in (0, 1) for j in (0, 1) for i in (0, 1)])
    assert torch.equal(empty, corners.amax(0) < -16.0 - dvr_march.EMPTY_MARGIN_HU)
    assert 0.3 < empty.float().mean() < 0.95
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 120, 25)
    skipped = scene.render(camera, 64)
    scene.geometry = dataclasses.replace(scene.geometry, empty=None)
    walked = scene.render(camera, 64)
    assert skipped.alpha.max() > 0.9
    assert torch.equal(skipped.rgb, walked.rgb) and torch.equal(skipped.alpha, walked.alpha)


def test_bricks_hold_only_empty_cells_within_their_reach():
    """Each brick's reach against a brute-force check on a small grid with a partial last brick
    on every axis: reach r means every brick within r - 1 of it is empty (bricks outside the
    grid count as empty), and a brick within r is not, unless the cap stopped the count."""
    generator = torch.Generator().manual_seed(3)
    empty = torch.rand(30, 26, 41, generator=generator) > 0.0004
    reach = dvr_march.empty_bricks(empty)
    size = dvr_march.BRICK_CELLS
    assert reach.shape == tuple(-(-n // size) for n in empty.shape)
    shown = torch.zeros(reach.shape, dtype=torch.bool)
    for k, j, i in (~empty).nonzero().tolist():
        shown[k // size, j // size, i // size] = True
    assert 0.01 < shown.float().mean() < 0.5 and int(reach.max()) >= 3
    at = torch.stack(torch.meshgrid(*(torch.arange(n) for n in reach.shape), indexing="ij"), -1)
    shown_at = at[shown]
    for brick in at.view(-1, 3):
        distance = (shown_at - brick).abs().amax(1).min()  # chessboard, to the nearest shown one
        assert int(reach[tuple(brick)]) == min(int(distance), dvr_march.MAX_REACH)


@pytest.mark.parametrize("preset", ["CT-Chest-Contrast-Enhanced", "CT-AAA"])
def test_jumping_over_empty_bricks_changes_no_bit(sample_ct, preset):
    """Windows of views from outside and a view from inside the CT, with the bricks and without:
    the same bits. The marcher does read them: bricks that wrongly call every cell empty (where
    the cells say otherwise) make it jump over what it would draw."""
    scene = DvrScene(sample_ct, preset, backend="cpu")
    assert (scene.geometry.bricks > 0).float().mean() > 0.3
    geometry = scene.geometry
    centre, radius = sample_ct.center_ras(), sample_ct.bounding_radius()
    views = [(orbit_camera(centre, radius, 200, -35), 512, (150, 170, 128)),
             (orbit_camera(centre, radius, 30, 60), 96, None),
             (orbit_camera(centre, 0.3 * radius, 75, 5), 64, None)]
    for camera, size, window in views:
        jumped = scene.render(camera, size, window=window)
        scene.geometry = dataclasses.replace(geometry, bricks=None)
        walked = scene.render(camera, size, window=window)
        scene.geometry = geometry
        assert jumped.alpha.max() > 0.5
        assert torch.equal(jumped.rgb, walked.rgb) and torch.equal(jumped.alpha, walked.alpha)
    right = scene.render(*views[1][:2])
    everywhere = torch.full_like(geometry.bricks, dvr_march.MAX_REACH)
    scene.geometry = dataclasses.replace(geometry, bricks=everywhere)
    wrong = scene.render(*views[1][:2])
    assert wrong.alpha.mean() < 0.5 * right.alpha.mean()


@pytest.mark.parametrize("points, below", [
    (((-3000.0, 0.0), (-16.0, 0.0), (641.0, 0.72)), -16.0),
    (((-3000.0, 0.0), (0.0, 0.0), (0.0, 0.05), (3000.0, 0.05)), 0.0),  # a step at 0 HU
    (((-3000.0, 0.1), (3000.0, 0.2)), None),                             # visible from the start
    (((-3000.0, 0.0), (3000.0, 0.0)), math.inf),                         # nothing visible
])
def test_transparent_below(points, below):
    assert transparent_below(points) == below
    if below is not None and math.isfinite(below):  # the curve is 0 just below, not at or above
        xs = torch.tensor([below - 1e-3, below + 1e-3])
        preset = Preset("t", points, ((0.0, 1.0), (255.0, 1.0)), WHITE, False, 0.1, 0.9, 0.0, 10.0)
        opacity = preset.opacity(xs)
        assert opacity[0] == 0 and opacity[1] > 0


def test_auto_uses_the_reference_where_the_library_cannot_build(sample_ct, monkeypatch):
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 30, 10)
    want = render_dvr(sample_ct, "CT-AAA", camera, 32, backend="torch")

    def unavailable(*args, **kwargs):
        raise AssertionError("the CPU marcher was called")

    monkeypatch.setattr(dvr_march, "available", lambda: "no C++ compiler")
    monkeypatch.setattr(dvr_march, "march_cpu", unavailable)
    got = render_dvr(sample_ct, "CT-AAA", camera, 32)
    assert torch.equal(got.rgb, want.rgb)


def test_an_unknown_backend_is_refused():
    ct = Volume(torch.zeros(4, 4, 4), np.eye(4))
    with pytest.raises(RenderFMError, match="backend"):
        DvrScene(ct, "CT-Bone", backend="gpu")


def test_the_cpu_backend_is_refused_on_another_device(monkeypatch):
    """Stand-in for a GPU (none here): check_device lets "meta" through as a device."""
    ct = Volume(torch.zeros(4, 4, 4), np.eye(4))
    monkeypatch.setattr("RenderFMLib.groundtruth.dvr.check_device", torch.device)
    with pytest.raises(RenderFMError, match="on the CPU"):
        DvrScene(ct, "CT-Bone", backend="cpu", device="meta")
