"""The CPU kernels (render/cpu: the CUDA math headers in C++ loops, through ctypes) against the
PyTorch reference, forward and backward, and their build.

The per-Gaussian and per-pixel math is the CUDA kernels' own and is checked function by function
in test_cuda_*_host.py; here the loops around it are checked (tiles, pixels, threads, argument
order, autograd), on the sample CT and on the blend scenes of cuda_host/scenes.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from cuda_host.scenes import (
    BLEND_BACKGROUND,
    BLEND_CASES,
    F32,
    blend_scene,
    project_scene,
    synthetic_footprints,
)

from RenderFMLib import api
from RenderFMLib.camera import camera_tensors
from RenderFMLib.errors import RenderFMError
from RenderFMLib.render import backends
from RenderFMLib.render.cpu import available, loader, pipeline
from RenderFMLib.render.reference import blend, precompute, render_torch, tile_keys
from RenderFMLib.render.reference.precompute import precompute_backward
from RenderFMLib.resources import resource_path

pytestmark = pytest.mark.skipif(available() is not None,
                                reason=f"the CPU kernels cannot be built here: {available()}")
SIZE = 96  # px
PARAMS = ("means", "dir_means", "log_scales", "corr_logits", "opacity_logits", "rgb", "sh",
          "specular_sh")


@pytest.fixture(scope="module")
def shaped():
    """The sample CT's AGP Gaussians (CT-Bone) with random shapes and view dependence, as
    fine-tuning leaves them: correlations, unequal scales, direction means off the gradient."""
    gaussians = api.prepare(resource_path("sample", "ct.nii.gz"), None, "CT-Bone", weights=None)
    gen = torch.Generator().manual_seed(3)
    params = {name: value.clone() for name, value in gaussians.params().items()}
    n = len(gaussians)
    params["corr_logits"] += 1.5 * torch.randn(n, 15, generator=gen)
    params["log_scales"] += 0.4 * torch.randn(n, 6, generator=gen)
    params["dir_means"] += 0.5 * torch.randn(n, 3, generator=gen)
    params["specular_sh"] += 0.1 * torch.randn(n, 9, generator=gen)
    return gaussians, params


def _frame(renderer, params: dict, camera, grad: bool, background=(0.1, 0.2, 0.3),
           slicing=precompute):
    """(rgb, alpha, depth, {name: gradient}) of one frame, slicing terms from `slicing`; the
    loss weighs every output with fixed random cotangents, so that every gradient path is
    used."""
    params = {k: v.detach().clone().requires_grad_(grad) for k, v in params.items()}
    w2c, intrinsics, centre = camera_tensors(camera, SIZE, SIZE, torch.device("cpu"), F32)
    s_c, gains, s_dd_inv = slicing(params["log_scales"], params["corr_logits"])
    rgb, alpha, depth = renderer(params["means"], params["dir_means"], s_c, gains, s_dd_inv,
                                 params["opacity_logits"], params["rgb"], params["sh"],
                                 params["specular_sh"], w2c,
                                 intrinsics, centre, SIZE, SIZE, torch.tensor(background))
    grads = {}
    if grad:
        gen = torch.Generator().manual_seed(1)
        weights = [torch.randn(t.shape, generator=gen) for t in (rgb, alpha, depth)]
        loss = sum((w * t).sum() for w, t in zip(weights, (rgb, alpha, 1e-3 * depth)))
        loss.backward()
        grads = {k: v.grad for k, v in params.items()}
    return rgb.detach(), alpha.detach(), depth.detach(), grads


@pytest.mark.parametrize("azimuth, elevation", [(30.0, 10.0), (200.0, -35.0)])
def test_frame_and_gradients_match_the_reference(shaped, azimuth, elevation):
    """Frames within 1e-5 (float32 sums of tens of terms in a different order: the reference
    forms T in float64 from log1p; measured 5.4e-7) and depth within 2e-3 mm (measured 6e-4);
    every gradient within 1e-4 of its largest magnitude (measured: up to 8e-6; a wrong or
    missing term is off by O(1) of it). Except where a Gaussian's alpha lies within rounding of
    the 1/255 cut: torch's own kernels round differently on different CPUs (AVX2, AVX-512), and
    such a Gaussian is drawn by one renderer and skipped by the other. Measured at (200, -35) on
    an Intel Xeon: 3 of 27,648 colour values off by up to 4.4e-4, the gradients of 12 of 46,774
    Gaussians by up to 5e-3 of the largest, one depth by 0.07 mm; on an AMD EPYC none. So
    FLIP_SHARE of the values may be off by up to 1/255 (one Gaussian's weight at the cut), of the
    depths by up to 1 mm, of the Gaussians' gradients by up to 1e-2 of the largest."""
    gaussians, params = shaped
    camera = api.default_camera(gaussians, azimuth, elevation)
    ours = _frame(pipeline.render_cpu, params, camera, grad=True, slicing=pipeline.precompute)
    ref = _frame(render_torch, params, camera, grad=True)
    assert ref[1].max() > 0.9 and (ref[1] > 0.01).float().mean() > 0.2  # the CT fills the view
    for got, want in zip(ours[:2], ref[:2]):
        _assert_close_but_flips((got - want).abs().flatten(), 1e-5, 1.0 / 255.0)
    _assert_close_but_flips((ours[2] - ref[2]).abs().flatten(), 2e-3, 1.0)
    for name in PARAMS:
        got, want = ours[3][name], ref[3][name]
        scale = want.abs().max()
        assert scale > 0, name
        err = (got - want).abs().reshape(len(got), -1).amax(1) / scale  # per Gaussian
        _assert_close_but_flips(err, 1e-4, 1e-2, name)


FLIP_SHARE = 1e-3  # of the values (or Gaussians) a flip at the alpha cut may move


def _assert_close_but_flips(err: torch.Tensor, atol: float, flip_atol: float,
                            name: str = "") -> None:
    """err [M]: within atol, but for at most FLIP_SHARE of M within flip_atol."""
    off = int((err > atol).sum())
    assert off <= FLIP_SHARE * len(err), (name, off, float(err.max()))
    assert (err <= flip_atol).all(), (name, float(err.max()))


@pytest.mark.parametrize("scene", ["sample", "blend"])
def test_precompute_and_its_backward_match_the_reference(shaped, scene):
    """S_c, K, S_dd^-1 and dL/d (log-scales, correlation logits) for random cotangents, against
    autograd through the reference in float64, on the sample's shaped Gaussians and on wider
    random ones (scales e^0.3..e^1.8, test_cuda_gpu's scene): within 1e-4 of each quantity's
    largest magnitude per Gaussian, over all Gaussians (float32 through two 3x3 inverses and
    triangular solves; measured: 2e-7 over the whole arrays; a wrong term is off by O(1))."""
    params = shaped[1] if scene == "sample" else blend_scene(5000, seed=14)
    inputs = [params[k].detach() for k in ("log_scales", "corr_logits")]
    gen = torch.Generator().manual_seed(2)
    cotangents = [torch.randn(len(inputs[0]), 3, 3, generator=gen) for _ in range(3)]
    ours = [t.clone().requires_grad_() for t in inputs]
    got = pipeline.precompute(*ours)
    got_grads = torch.autograd.grad(got, ours, cotangents)
    want = precompute(*(t.double() for t in inputs))
    want_grads = precompute_backward(*(t.double() for t in inputs),
                                     [c.double() for c in cotangents])
    for g, w in zip((*got, *got_grads), (*want, *want_grads)):
        w = w.flatten(1)
        error = (g.detach().double().flatten(1) - w).abs().amax(1)
        assert (error <= 1e-4 * w.abs().amax(1)).all()


def test_precompute_backward_of_a_culled_gaussian_is_zero(shaped):
    """A Gaussian whose cotangents are all zero (in no window) gets zero gradients, NaN or Inf
    parameters included, as slice_project_bwd gives (gaussian_math_bwd.cuh)."""
    log_scales = shaped[1]["log_scales"][:6].clone()
    corr_logits = shaped[1]["corr_logits"][:6].clone()
    log_scales[0, 1], log_scales[1, 4], corr_logits[2, 7] = math.inf, math.nan, math.nan
    inputs = [log_scales.requires_grad_(), corr_logits.requires_grad_()]
    cotangents = [torch.zeros(6, 3, 3) for _ in range(3)]
    for c in cotangents:
        c[3:] = 1.0  # the last three, finite, get a gradient
    grads = torch.autograd.grad(pipeline.precompute(*inputs), inputs, cotangents)
    for grad in grads:
        assert torch.equal(grad[:3], torch.zeros_like(grad[:3]))
        assert torch.isfinite(grad[3:]).all() and (grad[3:].abs().sum(1) > 0).all()


@pytest.mark.parametrize("name", sorted(BLEND_CASES))
def test_blend_matches_the_reference(name):
    """The blend stage alone on cuda_host's scenes (stacked: transmittance runs out; opaque: the
    0.99 cap; empty; a 7 x 5 image smaller than a tile), forward and backward, same binning."""
    make, width, height = BLEND_CASES[name]
    projected = project_scene(make(), width, height)
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height, pipeline.TILE_SIZE)
    background = torch.tensor(BLEND_BACKGROUND, dtype=F32)
    outputs = {}
    for label, function in (("cpu", pipeline.blend), ("reference", blend)):
        inputs = [projected[k].detach().clone().requires_grad_() for k in
                  ("means2d", "conics", "colors", "opacities", "depths")]
        extra = (pipeline.TILE_SIZE,) if function is blend else ()
        rgb, alpha, depth = function(*inputs, ids, ranges, width, height, background, *extra)
        gen = torch.Generator().manual_seed(2)
        loss = sum((torch.randn(t.shape, generator=gen) * t).sum() for t in (rgb, alpha, depth))
        if loss.requires_grad:
            loss.backward()
        grads = [torch.zeros_like(t) if t.grad is None else t.grad for t in inputs]
        outputs[label] = (rgb.detach(), alpha.detach(), depth.detach(), grads)
    ours, ref = outputs["cpu"], outputs["reference"]
    torch.testing.assert_close(ours[0], ref[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(ours[1], ref[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(ours[2], ref[2], rtol=0, atol=1e-3)
    for got, want in zip(ours[3], ref[3]):
        scale = float(want.abs().max()) if want.numel() else 0.0
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * max(scale, 1e-3))
    if name == "empty":
        assert len(ids) == 0 and (ours[1] == 0).all()
    else:
        assert (ref[1] > 0).float().mean() > 0.2


TILE_CASES = {  # cuda_host's footprints: radii 0 to 2^20, NaN means, 4 depths (ties in a tile)
    "ties": (3000, 100, 75), "one_tile": (500, 8, 8), "tiny_image": (300, 3, 1),
    "wide": (2000, 1000, 40), "empty": (0, 33, 17),
}


@pytest.mark.parametrize("tile_size", [pipeline.TILE_SIZE, 16])
@pytest.mark.parametrize("name", sorted(TILE_CASES))
def test_tile_keys_equal_the_reference(name, tile_size):
    """The binning is integer work on the same floats: ids and ranges exactly the reference's,
    ties in depth (kept in Gaussian order) and empty tiles included."""
    means2d, radii, depths, width, height = synthetic_footprints(*TILE_CASES[name], seed=7)
    ids, ranges = pipeline.tile_keys(means2d, radii, depths, width, height, tile_size)
    want_ids, want_ranges = tile_keys(means2d, radii, depths, width, height, tile_size)
    assert torch.equal(ids, want_ids) and torch.equal(ranges, want_ranges)
    if name != "empty":
        assert len(ids) > len(radii) // 2


def test_tile_keys_of_a_frame_equal_the_reference(shaped):
    """The sample's shaped Gaussians projected at 96 px: the binning the blend walks."""
    gaussians, params = shaped
    w2c, intrinsics, centre = camera_tensors(api.default_camera(gaussians), SIZE, SIZE,
                                             torch.device("cpu"), F32)
    s_c, gains, s_dd_inv = precompute(params["log_scales"], params["corr_logits"])
    projected = pipeline.slice_project(params["means"], params["dir_means"], s_c, gains, s_dd_inv,
                                       params["opacity_logits"], params["rgb"], params["sh"],
                                       params["specular_sh"], w2c,
                                       intrinsics, centre, SIZE, SIZE)
    args = (projected["means2d"], projected["radii"], projected["depths"], SIZE, SIZE,
            pipeline.TILE_SIZE)
    ids, ranges = pipeline.tile_keys(*args)
    want_ids, want_ranges = tile_keys(*args)
    assert len(ids) > 10_000
    assert torch.equal(ids, want_ids) and torch.equal(ranges, want_ranges)


def test_same_bits_every_run_and_forward_for_any_thread_count(shaped):
    """Work is dealt in fixed turns: two runs agree bit for bit, gradients included; the forward
    pass does not depend on the thread count (each pixel and Gaussian is one thread's)."""
    gaussians, params = shaped
    camera = api.default_camera(gaussians, 75.0, 20.0)
    first = _frame(pipeline.render_cpu, params, camera, grad=True)
    second = _frame(pipeline.render_cpu, params, camera, grad=True)
    assert all(torch.equal(a, b) for a, b in zip(first[:3], second[:3]))
    assert all(torch.equal(first[3][k], second[3][k]) for k in PARAMS)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = _frame(pipeline.render_cpu, params, camera, grad=False)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(first[:3], single[:3]))


def test_non_finite_gaussians_are_culled(shaped):
    """NaN or Inf in a Gaussian culls it (DESIGN.md section 6): the frame is the frame without
    it."""
    gaussians, params = shaped
    camera = api.default_camera(gaussians, 30.0, 10.0)
    poisoned = {k: v.clone() for k, v in params.items()}
    rows = torch.arange(0, len(gaussians), 997)
    poisoned["means"][rows[::3], 0] = math.nan
    poisoned["opacity_logits"][rows[1::3]] = math.inf * 0.0  # NaN
    poisoned["log_scales"][rows[2::3], 1] = math.inf
    keep = torch.ones(len(gaussians), dtype=torch.bool)
    keep[rows] = False
    got = _frame(pipeline.render_cpu, poisoned, camera, grad=False)
    want = _frame(pipeline.render_cpu, {k: v[keep] for k, v in params.items()}, camera, grad=False)
    assert torch.isfinite(got[0]).all()
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-6)


def test_the_window_renderer_is_the_kernels_and_culls_nothing_it_shows(shaped):
    """optimize/windows.render_window: the kernels (auto) on the Gaussians may_reach keeps, the
    same window and gradients as the reference over all of them (tolerances and flips at the
    alpha cut as in test_frame_and_gradients_match_the_reference)."""
    from RenderFMLib.optimize.windows import render_window

    gaussians, params = shaped
    camera = api.default_camera(gaussians, 120.0, 5.0)
    window = (100, 60, 64)
    ours = {k: v.clone().requires_grad_() for k, v in params.items()}
    rgb, alpha = render_window(ours, camera, 256, window)
    theirs = {k: v.clone().requires_grad_() for k, v in params.items()}
    w2c, intrinsics, centre = camera_tensors(camera, 256, 256, torch.device("cpu"), F32)
    intrinsics[0, 2] -= window[0]
    intrinsics[1, 2] -= window[1]
    s_c, gains, s_dd_inv = precompute(theirs["log_scales"], theirs["corr_logits"])
    want = render_torch(theirs["means"], theirs["dir_means"], s_c, gains, s_dd_inv,
                        theirs["opacity_logits"], theirs["rgb"], theirs["sh"],
                        theirs["specular_sh"], w2c, intrinsics,
                        centre, 64, 64, torch.zeros(3))
    assert want[1].max() > 0.5
    _assert_close_but_flips((rgb - want[0]).abs().flatten().detach(), 1e-5, 1.0 / 255.0)
    _assert_close_but_flips((alpha - want[1]).abs().flatten().detach(), 1e-5, 1.0 / 255.0)
    gen = torch.Generator().manual_seed(4)
    weights = [torch.randn(t.shape, generator=gen) for t in (rgb, alpha)]
    sum((w * t).sum() for w, t in zip(weights, (rgb, alpha))).backward()
    sum((w * t).sum() for w, t in zip(weights, want[:2])).backward()
    for name in PARAMS:
        got, expected = ours[name].grad, theirs[name].grad
        scale = expected.abs().max()
        assert scale > 0, name
        err = (got - expected).abs().reshape(len(got), -1).amax(1) / scale
        _assert_close_but_flips(err, 1e-4, 1e-2, name)


def test_the_window_rows_have_index_selects_gradient_bit_for_bit():
    """render_window's row selection (windows._Rows): the rows of index_select, and a backward
    that copies where index_select's adds into zeros: the same bits, rows left out at 0."""
    from RenderFMLib.optimize.windows import _Rows

    gen = torch.Generator().manual_seed(5)
    value = torch.randn(50, 3, 9, generator=gen)
    rows = torch.randperm(50, generator=gen)[:17]
    grad = torch.randn(17, 3, 9, generator=gen)
    ours, theirs = value.clone().requires_grad_(), value.clone().requires_grad_()
    picked = _Rows.apply(ours, rows)
    assert torch.equal(picked, theirs.index_select(0, rows))
    (picked * grad).sum().backward()
    (theirs.index_select(0, rows) * grad).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)
    assert ours.grad.abs().sum((1, 2)).ne(0).sum() == 17


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """The loader as in a new process, with an empty cache in tmp_path."""
    monkeypatch.setattr(loader, "_loaded", {})
    monkeypatch.setenv("RENDERFM_CACHE", str(tmp_path))
    return tmp_path


def test_build_once_into_the_cache_atomically(fresh_loader, monkeypatch):
    assert loader.available() is None
    built = list(fresh_loader.iterdir())
    assert len(built) == 1 and built[0].name.startswith("renderfm_cpu_")  # no temporary left
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(loader, "_loaded", {})  # a second process: loads, does not build
    assert loader.available() is None and built[0].stat().st_mtime_ns == stamp


def test_no_compiler_falls_back_to_the_reference(fresh_loader, monkeypatch, caplog):
    monkeypatch.setenv("CXX", "no-such-compiler-renderfm")
    reason = loader.available()
    assert reason == "no C++ compiler (g++, or $CXX) on the PATH"
    monkeypatch.setattr(backends, "_cpu_problem", loader.available)
    assert backends.pick("auto", torch.device("cpu"), torch.float32) is render_torch
    with pytest.raises(RenderFMError, match="no C\\+\\+ compiler"):
        backends.pick("cpu", torch.device("cpu"), torch.float32)
    assert not list(fresh_loader.iterdir())


def test_a_failed_build_says_why_and_leaves_nothing(fresh_loader, monkeypatch, tmp_path_factory):
    broken = tmp_path_factory.mktemp("src") / "kernels.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(loader, "SOURCES", (broken, *loader.SOURCES[1:]))
    reason = loader.available()
    assert reason is not None and "failed on kernels.cpp" in reason
    assert not list(fresh_loader.iterdir())


def test_openmp_and_own_threads_give_the_same_bits(shaped, fresh_loader, monkeypatch):
    """parallel.h runs its workers on OpenMP's threads (-fopenmp) or on its own (-pthread): with
    the same number of workers, both deal the same chunks to the same workers, so a frame and
    its gradients are the same bits."""
    gaussians, params = shaped
    camera = api.default_camera(gaussians, 75.0, 20.0)
    threads = torch.get_num_threads()
    frames = []
    try:
        torch.set_num_threads(2)  # two workers even on one core: the blend's sums are per worker
        for threading in loader.THREADING:
            monkeypatch.setattr(loader, "_loaded", {})
            monkeypatch.setattr(loader, "THREADING", (threading,))
            assert loader.available() is None, threading
            frames.append(_frame(pipeline.render_cpu, params, camera, grad=True))
    finally:
        torch.set_num_threads(threads)
    assert len(list(fresh_loader.iterdir())) == 2  # two libraries, one per way
    first, second = frames
    assert all(torch.equal(a, b) for a, b in zip(first[:3], second[:3]))
    assert all(torch.equal(first[3][k], second[3][k]) for k in PARAMS)


def test_a_compiler_without_openmp_gets_the_threads_build(fresh_loader, monkeypatch):
    monkeypatch.setattr(loader, "THREADING", (("-fno-such-option-renderfm",), ("-pthread",)))
    assert loader.available() is None
    assert len(list(fresh_loader.iterdir())) == 1
