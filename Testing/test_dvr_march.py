"""dvr's two ray marchers (groundtruth/dvr_march.py): the CPU library's loop against its PyTorch
reference on the bundled CT, the empty cells it skips, and the choice between them."""

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
