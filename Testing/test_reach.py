"""render/reference/reach.py's may_reach and its CPU kernel twin: a cull from the parameters alone
that never drops a Gaussian slice_project keeps, and that does drop most of those it culls."""

from __future__ import annotations

import math

import pytest
import torch

from RenderFMLib import api
from RenderFMLib.camera import camera_tensors, orbit_camera
from RenderFMLib.render.cpu import available
from RenderFMLib.render.cpu import pipeline as cpu
from RenderFMLib.render.reference import precompute, reach, slice_project
from RenderFMLib.resources import resource_path

F32 = torch.float32
TWINS = [pytest.param(reach.may_reach, id="torch"),
         pytest.param(cpu.may_reach, id="cpu", marks=pytest.mark.skipif(
             available() is not None, reason=f"the CPU kernels cannot be built: {available()}"))]


@pytest.fixture(scope="module")
def primed():
    """The sample's AGP Gaussians (CT-Bone) and their parameters."""
    gaussians = api.prepare(resource_path("sample", "ct.nii.gz"), None, "CT-Bone", weights=None)
    return gaussians, {name: value.clone() for name, value in gaussians.params().items()}


@pytest.fixture(scope="module")
def shaped(primed):
    """primed with shapes, correlations, view dependence and opacity randomised well past what
    fine-tuning does (so the bound's every term is exercised)."""
    gaussians, params = primed
    gen = torch.Generator().manual_seed(5)
    params = {name: value.clone() for name, value in params.items()}
    n = len(gaussians)
    params["corr_logits"] += 2.0 * torch.randn(n, 15, generator=gen)
    params["log_scales"] += 0.8 * torch.randn(n, 6, generator=gen)
    params["dir_means"] += torch.randn(n, 3, generator=gen)
    params["opacity_logits"] += 2.0 * torch.randn(n, generator=gen)
    return gaussians, params


def _cameras(gaussians):
    """(camera, size, window (x0, y0, side)): orbit views and a close-up from inside the
    anatomy's extent, whole images and windows, corners included."""
    centre, radius = gaussians.center_ras(), gaussians.bounding_radius()
    near_point = gaussians.means[len(gaussians) // 2].double().numpy()
    return [
        (orbit_camera(centre, radius, 30.0, 10.0), 96, (0, 0, 96)),
        (orbit_camera(centre, radius, 200.0, -35.0), 256, (100, 60, 64)),
        (orbit_camera(centre, radius, 90.0, 50.0), 256, (0, 0, 32)),
        (orbit_camera(near_point, 0.15 * radius, 300.0, 5.0), 128, (40, 40, 48)),
        (orbit_camera(near_point, 0.02 * radius, 10.0, 0.0), 128, (0, 0, 128)),
    ]


def _exact(params, w2c, intrinsics, centre, side) -> torch.Tensor:
    s_c, gains, s_dd_inv = precompute(params["log_scales"], params["corr_logits"])
    radii = slice_project(params["means"], params["dir_means"], s_c, gains, s_dd_inv,
                          params["opacity_logits"], params["rgb"], params["sh"],
                          params["specular_sh"], w2c, intrinsics,
                          centre, side, side)["radii"]
    return radii > 0


def _window_camera(camera, size, window):
    w2c, intrinsics, centre = camera_tensors(camera, size, size, torch.device("cpu"), F32)
    intrinsics = intrinsics.clone()
    intrinsics[0, 2] -= window[0]
    intrinsics[1, 2] -= window[1]
    return w2c, intrinsics, centre


@pytest.mark.parametrize("may_reach", TWINS)
def test_keeps_every_gaussian_slice_project_keeps(shaped, may_reach):
    """Never a Gaussian with radius > 0 dropped (the frame and gradients depend on it)."""
    gaussians, params = shaped
    for camera, size, window in _cameras(gaussians):
        w2c, intrinsics, centre = _window_camera(camera, size, window)
        shown = _exact(params, w2c, intrinsics, centre, window[2])
        kept = may_reach(params, w2c, intrinsics, window[2], window[2])
        assert kept.dtype == torch.bool and kept.shape == shown.shape
        assert not (shown & ~kept).any(), f"{int((shown & ~kept).sum())} dropped at {window}"


@pytest.mark.parametrize("may_reach", TWINS)
def test_culls_most_of_what_slice_project_culls(primed, may_reach):
    """The bound is tight enough to be worth it: of the Gaussians slice_project culls, most are
    culled here too (all-True would pass the test above and fail this one). On AGP's Gaussians,
    as fine-tuning starts: measured 80-100 % per view (the whole-image view culls none). On the
    randomised ones it culls 30 % of them in the whole-image view: there they are mostly
    Gaussians far thinner after slicing than trace S_pp bounds, which the opacity's coverage
    factor takes below 1/255."""
    gaussians, params = primed
    for camera, size, window in _cameras(gaussians):
        w2c, intrinsics, centre = _window_camera(camera, size, window)
        culled = ~_exact(params, w2c, intrinsics, centre, window[2])
        kept = may_reach(params, w2c, intrinsics, window[2], window[2])
        assert (~kept & culled).sum() >= 0.5 * culled.sum(), window


def test_the_twins_agree(shaped):
    """The C++ loop computes reach.py's formulas in float32 in the same order: the same answer
    for every Gaussian of every view here (a difference would only be rounding at the cut; none
    was measured, so none is allowed)."""
    if available() is not None:
        pytest.skip(f"the CPU kernels cannot be built: {available()}")
    gaussians, params = shaped
    for camera, size, window in _cameras(gaussians):
        w2c, intrinsics, _ = _window_camera(camera, size, window)
        assert torch.equal(cpu.may_reach(params, w2c, intrinsics, window[2], window[2]),
                           reach.may_reach(params, w2c, intrinsics, window[2], window[2]))


@pytest.mark.parametrize("may_reach", TWINS)
def test_what_slice_project_must_cull(may_reach):
    """Behind the camera, fully transparent (sigmoid(o) < 1/255) and non-finite Gaussians are
    dropped; one straddling the near plane and one in view are kept."""
    camera = orbit_camera((0.0, 0.0, 0.0), 100.0, 0.0, 0.0)
    w2c, intrinsics, _ = camera_tensors(camera, 64, 64, torch.device("cpu"), F32)
    position = torch.tensor(camera.position, dtype=F32)
    ahead = -position / position.norm()
    means = torch.stack([
        torch.zeros(3),                                  # in view
        position - 50.0 * ahead,                         # behind the camera
        torch.zeros(3),                                  # transparent
        torch.tensor([math.nan, 0.0, 0.0]),              # non-finite
        position + 0.5 * ahead,                          # across the near plane (1 mm)
    ])
    n = len(means)
    params = {"means": means, "log_scales": torch.zeros(n, 6), "corr_logits": torch.zeros(n, 15),
              "opacity_logits": torch.tensor([0.0, 0.0, -7.0, 0.0, 0.0])}
    assert may_reach(params, w2c, intrinsics, 64, 64).tolist() == [True, False, False, False,
                                                                   True]
