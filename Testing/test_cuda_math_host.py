"""gaussian_math.cuh built by the host C++ compiler vs the PyTorch reference, float32 both.

Testing/cuda_host/harness.cpp runs the CUDA kernels' per-Gaussian functions on the CPU. Each stage
reads the reference's own inputs (precompute: the parameters; slice and project: the reference's
S_c, K, S_dd^-1; tile_rect: its means2d and radii), so each is checked alone. The Gaussians are
random ones about a CT-sized scene for a real orbit camera, plus groups of degenerate ones: huge
and tiny scales, near-singular correlations, behind the camera, at the near plane, off-screen,
faint, special directions, and NaN or Inf entries (DESIGN.md section 8).

The two sides round differently (torch's BLAS uses other summation orders and FMA; libm's exp
and torch's vectorized exp differ by an ulp), so values are compared with tolerances derived,
per test, from float32 rounding (EPS); culling decisions and NaN/Inf patterns must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cuda_host import host_harness
from cuda_host.rounding import EPS, camera_error, slice_terms
from cuda_host.scenes import GROUP, HEIGHT, MATRICES, WIDTH, camera, stage2_inputs

from RenderFMLib.render.reference import slice_gaussians, slice_project
from RenderFMLib.render.reference.blend import _alpha
from RenderFMLib.render.reference.precompute import cholesky_factor
from RenderFMLib.render.reference.slice_project import (
    COVARIANCE_BLUR_PX2,
    MIN_ALPHA,
    OPACITY_LAMBDA,
    _ewa_covariance,
)
from RenderFMLib.render.reference.tile_keys import TILE_SIZE, tile_grid, tile_rects

F32 = torch.float32
PRECOMPUTE_RTOL = 1e-4  # of each matrix's largest entry, plus EPS cond(B); see the test
MAX_RADIUS = 1 << 20  # px, the reference's clamp


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return host_harness.build("harness", tmp_path_factory.mktemp("harness"))


# ---------------------------------------------------------------- the harness run -------------

def _run(harness, tmp, inputs: dict, ints: dict, n: int, p: int) -> dict:
    order = ["w2c", "intrinsics", "centre", "log_scales", "corr_logits", "means", "dir_means",
             "s_c", "gains", "s_dd_inv", "opacity_logits", "rgb", "sh", "specular_sh",
             "ref_means2d", "ref_radii",
             "px_means", "px_conics", "px_opacity", "pixels"]
    values = {**inputs, **ints}
    header = (np.array([n, p, WIDTH, HEIGHT, TILE_SIZE]), np.int32)
    layout = [("s_c", 9), ("gains", 9), ("s_dd_inv", 9), ("mu_c", 3), ("alpha", 1),
              ("means2d", 2), ("conics", 3), ("depths", 1), ("opacities", 1), ("colors", 3),
              ("radii", 1),
              ("rects", 4)]
    return host_harness.run(
        harness, tmp,
        [header, *((values[k], np.int32 if k in ints else np.float32) for k in order)],
        [*((name, np.int32 if name in ("radii", "rects") else np.float32,
            (n, width) if width > 1 else (n,)) for name, width in layout),
         ("pixel_alpha", np.float32, (p,))])


def _pixel_samples(ref: dict, seed: int, count: int = 8192) -> dict:
    """(Gaussian, pixel) pairs near visible Gaussians, plus hand-made edge cases, and _alpha."""
    rng = np.random.default_rng(seed)
    visible = np.flatnonzero(ref["radii"] > 0)
    gid = rng.choice(visible, count)
    reach = np.minimum(ref["radii"][gid], 64)[:, None] * rng.uniform(-1.2, 1.2, (count, 2))
    pixels = np.floor(ref["means2d"][gid] + reach).astype(np.int32)
    footprint = np.concatenate([ref["means2d"][gid], ref["conics"][gid],
                                ref["opacities"][gid][:, None]], axis=1).astype(np.float32)
    edge = footprint[:6].copy()
    edge[0, 2:5] = [-1.0, 0.0, -1.0]   # negative-definite conic: power > 0
    edge[1, 5] = np.nan                # NaN opacity
    edge[2, 0] = np.inf                # infinite mean
    edge[3, 5] = 1.0                   # opacity 1: capped at 0.99
    edge[4, 2:5] = [0.0, 0.0, 0.0]     # power 0 exactly
    edge[5, 3] = np.nan                # NaN conic
    footprint = np.concatenate([footprint, edge])
    pixels = np.concatenate([pixels, pixels[:6]])
    centres = torch.from_numpy(pixels).to(F32) + 0.5
    expected = _alpha(torch.from_numpy(footprint), centres).numpy()
    return {"inputs": {"px_means": footprint[:, :2], "px_conics": footprint[:, 2:5],
                       "px_opacity": footprint[:, 5]},
            "pixels": pixels, "expected": expected}


@pytest.fixture(scope="module")
def case(harness, tmp_path_factory) -> dict:
    """Inputs, the reference's float32 outputs and the harness's outputs."""
    stage2, precomputed, groups = stage2_inputs()
    n = len(groups)
    t = {k: torch.from_numpy(v) for k, v in stage2.items()}
    w2c, intrinsics, centre = (x.to(F32) for x in camera())
    mu_c, alpha = slice_gaussians(t["means"], t["dir_means"], t["gains"], t["s_dd_inv"],
                                  t["opacity_logits"], centre)
    ref = slice_project(t["means"], t["dir_means"], t["s_c"], t["gains"], t["s_dd_inv"],
                        t["opacity_logits"], t["rgb"], t["sh"], t["specular_sh"], w2c, intrinsics,
                        centre, WIDTH, HEIGHT)
    ref = {k: v.numpy() for k, v in ref.items()} | {"mu_c": mu_c.numpy(), "alpha": alpha.numpy()}
    ref["rects"] = tile_rects(torch.from_numpy(ref["means2d"]), torch.from_numpy(ref["radii"]),
                              WIDTH, HEIGHT, TILE_SIZE).numpy()
    pixels = _pixel_samples(ref, seed=3)

    inputs = {**stage2, "w2c": w2c.numpy(), "intrinsics": intrinsics.numpy(),
              "centre": centre.numpy(), "ref_means2d": ref["means2d"], **pixels["inputs"]}
    ints = {"ref_radii": ref["radii"], "pixels": pixels["pixels"]}
    host = _run(harness, tmp_path_factory.mktemp("run"), inputs, ints, n, len(pixels["pixels"]))
    return {"n": n, "groups": groups, "inputs": stage2, "precomputed": precomputed, "ref": ref,
            "host": host, "pixels": pixels, "camera": (w2c, intrinsics, centre)}


def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """[n] bool: every entry of every array's row is finite."""
    return np.all([np.isfinite(a.reshape(len(a), -1)).all(1) for a in arrays], axis=0)


def _slice_terms(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """rounding.slice_terms of the case's inputs."""
    return slice_terms(case["inputs"], case["camera"][2])


def _camera_error(case: dict) -> np.ndarray:
    """rounding.camera_error of the case's inputs, mm [n]."""
    return camera_error(case["inputs"], case["camera"][0], case["camera"][2])


def _sharp_covariance(case: dict) -> torch.Tensor:
    """[n, 2, 2] px^2: the reference's float32 2D covariance before the blur."""
    w2c, intrinsics, _ = case["camera"]
    cam = torch.from_numpy(case["ref"]["mu_c"]) @ w2c[:3, :3].T + w2c[:3, 3]
    depth = cam[:, 2]
    safe_depth = torch.where(depth > 1.0, depth, torch.ones_like(depth))
    return _ewa_covariance(cam, safe_depth, torch.from_numpy(case["inputs"]["s_c"]), w2c[:3, :3],
                           intrinsics, WIDTH, HEIGHT)


def _reference_radius_before_ceil(case: dict) -> np.ndarray:
    """[n] the reference's float32 radius before its ceil (slice_project's _radii, unrounded)."""
    cov = _sharp_covariance(case) + COVARIANCE_BLUR_PX2 * torch.eye(2)
    a, b, c = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    mid = 0.5 * (a + c)
    lambda_max = mid + torch.sqrt(torch.clamp(mid * mid - (a * c - b * b), min=0.1))
    alpha = torch.from_numpy(case["ref"]["opacities"])  # alpha_c times the coverage factor
    extent = torch.sqrt(2.0 * torch.log(torch.clamp(alpha / MIN_ALPHA, min=1.0)))
    return (extent * torch.sqrt(lambda_max.clamp_min(0.0))).numpy()  # ceil, then clamped to 2^20


def _worst(err: np.ndarray, tol: np.ndarray, groups: np.ndarray) -> str:
    k = int(np.argmax(err / tol))
    return f"Gaussian {k} ({groups[k]}): error {err[k]:.3g}, tolerance {tol[k]:.3g}"


# ---------------------------------------------------------------- tests -----------------------

def test_precompute_host_vs_torch(case):
    """S_c, K, S_dd^-1 agree to (1e-4 + EPS cond(B)) of each matrix's largest entry, and are
    non-finite for the same Gaussians.

    Both sides run the same block form in float32, with other summation orders and 3x3 inverses
    (adjugate here, LU in torch). The triangular solves with B (the direction block of L) lose
    up to cond(B) EPS, which only matters for tiny or strongly correlated direction scales
    (cond(B) up to 1e5 here). Over 60 seeds the differences reach 0.26 of this tolerance, and
    the reference itself is up to 6e-5 off its float64 twin; a wrong term is O(1) off.
    """
    host, n, groups = case["host"], case["n"], case["groups"]
    finite = _finite_rows(*case["precomputed"])
    np.testing.assert_array_equal(_finite_rows(*(host[m] for m in MATRICES)), finite)
    assert finite[groups != "non_finite"].all()
    factor = cholesky_factor(*(torch.from_numpy(case["inputs"][k][finite]).double()
                               for k in ("log_scales", "corr_logits")))
    rtol = PRECOMPUTE_RTOL + EPS * np.linalg.cond(factor[:, 3:, 3:].numpy())
    for name, want in zip(MATRICES, case["precomputed"]):
        got = host[name].reshape(n, 3, 3)[finite].astype(np.float64)
        want = want[finite].astype(np.float64)
        err = np.abs(got - want).max((1, 2))
        tol = rtol * np.abs(want).max((1, 2))
        assert (err <= tol).all(), f"{name}: {_worst(err, tol + 1e-30, groups[finite])}"


def test_slice_host_vs_torch(case):
    """mu_c within 8 EPS of its terms (_slice_terms; measured 1.1); alpha_c within
    1e-6 + alpha_c 0.35 (8 EPS quad terms): values in [0, 1], one ulp or two from libm's exp and
    torch's vectorized exp and sigmoid, and the exponent's own rounding, large where S_dd^-1 is
    (tiny direction scales); non-finite in the same places."""
    host, ref, groups = case["host"], case["ref"], case["groups"]
    for name in ("mu_c", "alpha"):
        np.testing.assert_array_equal(np.isfinite(host[name]), np.isfinite(ref[name]), name)
    finite = _finite_rows(ref["mu_c"], ref["alpha"])
    mm, quad = (terms[finite] for terms in _slice_terms(case))
    err = np.abs(host["mu_c"][finite] - ref["mu_c"][finite]).max(1)
    tol = np.nan_to_num(8 * EPS * mm, nan=0.0)  # a NaN or Inf input with a finite output
    assert (err <= tol).all(), "mu_c: " + _worst(err, tol, groups[finite])
    want = ref["alpha"][finite]
    err = np.abs(host["alpha"][finite] - want)
    with np.errstate(invalid="ignore"):  # 0 * Inf where a poisoned S_dd^-1 gives alpha_c 0
        tol = 1e-6 + np.nan_to_num(want * OPACITY_LAMBDA * 8 * EPS * quad, nan=0.0)
    assert (err <= tol).all(), "alpha_c: " + _worst(err, tol, groups[finite])


def test_project_culling_host_vs_torch(case):
    """The same Gaussians are culled; every one with a non-finite output is among them."""
    host, ref, groups = case["host"], case["ref"], case["groups"]
    visible = ref["radii"] > 0
    mismatch = np.flatnonzero((host["radii"] > 0) != visible)
    assert mismatch.size == 0, [(int(k), groups[k], int(ref["radii"][k]), int(host["radii"][k]))
                                for k in mismatch[:10]]
    outputs = ("means2d", "conics", "colors", "alpha", "depths")
    assert (host["radii"][~_finite_rows(*(host[k] for k in outputs))] == 0).all()
    # The degenerate groups reach both outcomes (or are all culled, behind the camera).
    for group in ("huge", "tiny", "correlated", "near_plane", "off_screen", "faint", "non_finite"):
        assert 0 < visible[groups == group].sum() < GROUP, group
    assert visible[groups == "behind"].sum() < GROUP // 10


def test_project_host_vs_torch(case):
    """means2d, conics, depths, colours and opacities agree within the rounding of the camera
    coordinates.

    With e = _camera_error (mm) and z the depth (>= 1 mm): depth within e; means2d within
    1e-3 px + (fx + |m - c|) / z * e (the pinhole's derivatives); conics within
    1e-4 + 4 e / z + 4 EPS kappa of their largest entry (they scale as z^2, and det = a c - b^2
    loses kappa = (|a c| + b^2) / |det| in relative precision, up to 1e4 for huge elongated
    footprints); colours within 1e-6 + 1e-5 |colour| (a sum of 9 SH terms of size ~1); opacities
    within 1e-6 + (1e-6 + 4 e / z + 4 EPS (kappa_S + kappa_S+blur)) of it (alpha_c's rounding, the
    footprint's scale and both determinants of the coverage factor). For a
    Gaussian in the scene (z ~ 580 mm) the means2d tolerance is about 2e-3 px; near the near
    plane it grows as 1/z, as the reference's own float32 error does.
    """
    host, ref, groups = case["host"], case["ref"], case["groups"]
    intrinsics = case["camera"][1].numpy()
    fx, principal = intrinsics[0, 0], intrinsics[:2, 2]
    for name in ("means2d", "conics", "depths", "colors", "opacities"):
        np.testing.assert_array_equal(np.isfinite(host[name]), np.isfinite(ref[name]), name)
    finite = _finite_rows(ref["means2d"], ref["conics"], ref["depths"], ref["colors"],
                          ref["opacities"])
    finite &= np.isfinite(case["inputs"]["means"]).all(1)
    e = _camera_error(case)[finite]
    z = np.maximum(ref["depths"][finite], 1.0)
    g = groups[finite]

    err = np.abs(host["depths"][finite] - ref["depths"][finite])
    assert (err <= e).all(), "depth: " + _worst(err, e, g)
    want = ref["means2d"][finite]
    err = np.abs(host["means2d"][finite] - want).max(1)
    tol = 1e-3 + (fx + np.abs(want - principal).max(1)) / z * e
    assert (err <= tol).all(), "means2d: " + _worst(err, tol, g)
    assert (err[g == "random"] <= 1e-3).all()  # ordinary Gaussians: 1e-3 px flat (measured 6e-5)
    want = ref["conics"][finite].astype(np.float64)
    err = np.abs(host["conics"][finite] - want).max(1)
    a, b, c = want.T
    cancellation = (np.abs(a * c) + b * b) / np.abs(a * c - b * b)  # of det = a c - b^2
    tol = (1e-4 + 4.0 * e / z + 4.0 * EPS * cancellation) * np.abs(want).max(1)
    assert (err <= tol).all(), "conics: " + _worst(err, tol, g)
    np.testing.assert_allclose(host["colors"][finite], ref["colors"][finite], rtol=1e-5, atol=1e-6)
    # opacity = alpha_c sqrt(det S / det(S + blur I)): both determinants lose their kappa
    cov = _sharp_covariance(case)[finite].double().numpy()
    sa, b, sc = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    kappa = sum((np.abs(x * y) + b * b) / np.abs(x * y - b * b)
                for x, y in ((sa, sc), (sa + COVARIANCE_BLUR_PX2, sc + COVARIANCE_BLUR_PX2)))
    want = ref["opacities"][finite].astype(np.float64)
    err = np.abs(host["opacities"][finite] - want)
    tol = 1e-6 + (1e-6 + 4.0 * e / z + 4.0 * EPS * kappa) * want
    assert (err <= tol).all(), "opacities: " + _worst(err, tol, g)


def test_radii_host_vs_torch(case):
    """Radii are equal unless the reference's float radius v sits within delta v of an integer:
    ceil(v (1 - delta)) <= radius <= ceil(v (1 + delta)), delta = 1e-4 + 2 e / z (the footprint's
    size scales as 1/z, so the depth's rounding e / z enters its relative error twice)."""
    host, ref, groups = case["host"], case["ref"], case["groups"]
    visible = np.flatnonzero(ref["radii"] > 0)
    before_ceil = _reference_radius_before_ceil(case)[visible].astype(np.float64)
    radius = lambda v: np.minimum(np.ceil(v), MAX_RADIUS)  # noqa: E731
    np.testing.assert_array_equal(radius(before_ceil), ref["radii"][visible])  # recomputed right
    delta = 1e-4 + 2.0 * _camera_error(case)[visible] / np.maximum(ref["depths"][visible], 1.0)
    got = host["radii"][visible]
    ok = (radius(before_ceil * (1 - delta)) <= got) & (got <= radius(before_ceil * (1 + delta)))
    bad = visible[~ok]
    assert bad.size == 0, [(int(k), groups[k], float(before_ceil[i]), int(host["radii"][k]))
                           for i, k in zip(np.flatnonzero(~ok)[:10], bad)]
    assert (got == ref["radii"][visible]).mean() > 0.99


def test_tile_rects_host_vs_torch(case):
    """tile_rect equals tile_rects wherever the mean is finite; every rectangle lies in the tile
    grid, empty (x1 < x0, y1 < y0) for radius 0, NaN means included."""
    host, ref = case["host"], case["ref"]
    finite = np.isfinite(ref["means2d"]).all(1)
    np.testing.assert_array_equal(host["rects"][finite], ref["rects"][finite])
    tiles_x, tiles_y = tile_grid(WIDTH, HEIGHT, TILE_SIZE)
    x0, y0, x1, y1 = host["rects"].T
    assert ((x0 >= 0) & (x0 < tiles_x) & (y0 >= 0) & (y0 < tiles_y)).all()
    assert ((x1 < tiles_x) & (y1 < tiles_y)).all()
    culled = ref["radii"] == 0
    assert ((x1 < x0) & (y1 < y0))[culled].all() and ((x1 >= x0) & (y1 >= y0))[~culled].all()


def test_pixel_alpha_host_vs_torch(case):
    """pixel_alpha equals blend's _alpha within 2 ulps of 1 (one exp rounding; measured 6e-8),
    NaN where it is NaN, and exactly on the hand-made edge cases (power > 0, NaN, Inf, cap)."""
    got, want = case["host"]["pixel_alpha"], case["pixels"]["expected"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=2.5e-7)
    np.testing.assert_array_equal(got[-6:], want[-6:])
    assert (want > 0).mean() > 0.3 and (want == 0).any()
