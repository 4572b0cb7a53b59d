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

import importlib
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from RenderFMLib.camera import Camera, camera_tensors, orbit_camera
from RenderFMLib.render.cuda import CUDA_DIR
from RenderFMLib.render.reference import (blend, precompute, slice_gaussians, slice_project,
                                          tile_keys)
from RenderFMLib.render.reference.blend import _alpha
from RenderFMLib.render.reference.precompute import cholesky_factor
from RenderFMLib.render.reference.slice_project import (MIN_ALPHA, OPACITY_LAMBDA,
                                                         _ewa_covariance)
from RenderFMLib.render.reference.tile_keys import TILE_SIZE, tile_grid, tile_rects

blend_module = importlib.import_module("RenderFMLib.render.reference.blend")  # not the function
HARNESS = Path(__file__).parent / "cuda_host" / "harness.cpp"
BLEND_HARNESS = Path(__file__).parent / "cuda_host" / "blend_harness.cpp"
WIDTH, HEIGHT = 320, 240  # px; not square, so a swap of x and y shows
CENTER = np.array([10.0, -20.0, 30.0])  # RAS mm, the orbit's focus
F32 = torch.float32
EPS = 2.0**-23  # float32 machine epsilon
RANDOM = 4096  # ordinary Gaussians
GROUP = 256  # Gaussians per degenerate group
GROUPS = ("random", "huge", "tiny", "correlated", "behind", "near_plane", "off_screen", "faint",
          "special", "non_finite")
MATRICES = ("s_c", "gains", "s_dd_inv")
PRECOMPUTE_RTOL = 1e-4  # of each matrix's largest entry, plus EPS cond(B); see the test
MAX_RADIUS = 1 << 20  # px, the reference's clamp
CAMERA_ULPS = 8.0  # rounding allowed in camera coordinates, in EPS of their terms (measured 0.9)


def _build(source: Path, tmp_path_factory) -> Path:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ not found: the host build of gaussian_math.cuh needs a C++17 compiler")
    exe = tmp_path_factory.mktemp("harness") / source.stem
    result = subprocess.run(
        [compiler, "-O2", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{CUDA_DIR}",
         str(source), "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return exe


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    return _build(HARNESS, tmp_path_factory)


@pytest.fixture(scope="module")
def blend_harness(tmp_path_factory) -> Path:
    return _build(BLEND_HARNESS, tmp_path_factory)


# ---------------------------------------------------------------- inputs ----------------------

def _camera() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(world_to_camera [4, 4], intrinsics [3, 3], centre [3] RAS mm), float64."""
    camera = orbit_camera(CENTER, radius=150.0, azimuth=35.0, elevation=20.0)
    return camera_tensors(camera, WIDTH, HEIGHT, torch.device("cpu"), torch.float64)


def _at_camera_points(points_cam: np.ndarray) -> np.ndarray:
    """RAS mm [n, 3] of camera-frame points [n, 3] mm."""
    w2c = _camera()[0].numpy()
    return (points_cam - w2c[:3, 3]) @ w2c[:3, :3]


def _parameters(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """float64 parameters of the random Gaussians about CENTER, then one GROUP of each degenerate
    kind; and each Gaussian's group name."""
    rng = np.random.default_rng(seed)
    n = RANDOM + GROUP * (len(GROUPS) - 1)
    p = {
        "means": CENTER + rng.uniform(-150.0, 150.0, (n, 3)),
        "dir_means": rng.normal(size=(n, 3)),
        "log_scales": np.concatenate([math.log(2.1) + 0.7 * rng.normal(size=(n, 3)),
                                      math.log(3.0) + 0.7 * rng.normal(size=(n, 3))], axis=1),
        "corr_logits": 2.0 * rng.normal(size=(n, 15)),
        "opacity_logits": 2.0 * rng.normal(size=n),
        "rgb": rng.uniform(size=(n, 3)),
        "sh": 0.5 * rng.normal(size=(n, 9)) + np.eye(9)[0] * 2.0,
    }
    names = np.array(["random"] * RANDOM + [g for g in GROUPS[1:] for _ in range(GROUP)])
    at = {g: np.flatnonzero(names == g) for g in GROUPS}
    p["log_scales"][at["huge"], :3] += rng.uniform(4.0, 9.0, (GROUP, 3))
    shrink = rng.uniform(0.0, 9.0, (GROUP, 6)) * (rng.uniform(size=(GROUP, 6)) < 0.5)
    p["log_scales"][at["tiny"]] -= shrink
    signs = rng.choice([-1.0, 1.0], (GROUP, 15))
    p["corr_logits"][at["correlated"]] = signs * rng.uniform(5.0, 9.0, (GROUP, 15))
    eye = _camera()[2].numpy()
    p["means"][at["behind"]] = (eye + (eye - CENTER) * rng.uniform(0.0, 0.5, (GROUP, 1))
                                + rng.normal(scale=30.0, size=(GROUP, 3)))
    depth = rng.choice([0.5, 0.999, 1.001, 1.5, 3.0, 10.0], GROUP)  # mm; the near plane is 1
    lateral = rng.uniform(-1.0, 1.0, (GROUP, 2)) * depth[:, None]
    p["means"][at["near_plane"]] = _at_camera_points(np.column_stack([lateral, depth]))
    p["corr_logits"][at["near_plane"]] = 0.0  # K = 0 exactly: mu_c = mu_p stays at that depth
    depth = rng.uniform(20.0, 600.0, GROUP)
    half_fov = np.array([WIDTH, HEIGHT]) / 2.0 / _camera()[1][0, 0].item()  # tan(FOV / 2)
    slope = rng.uniform(-3.0, 3.0, (GROUP, 2)) * half_fov  # up to 3x the field of view
    off_screen = np.column_stack([slope * depth[:, None], depth])
    p["means"][at["off_screen"]] = _at_camera_points(off_screen)
    p["opacity_logits"][at["faint"]] = rng.uniform(-12.0, -4.0, GROUP)  # alpha_c about 1/255
    special = at["special"]
    p["dir_means"][special[:16]] = 0.0  # normalize() of a zero vector gives 0
    p["means"][special[16:32]] = eye  # at the camera centre: zero view direction
    view = p["means"][special[32:]] - eye
    p["dir_means"][special[32:]] = view / np.linalg.norm(view, axis=1, keepdims=True)  # delta ~ 0
    return p, names


def _poison(arrays: dict[str, np.ndarray], names: list[str], rows: np.ndarray, seed: int) -> None:
    """Put one NaN, +Inf or -Inf into one entry of one of `names` for each of `rows`."""
    rng = np.random.default_rng(seed)
    for row in rows:
        target = arrays[names[rng.integers(len(names))]]
        flat = target.reshape(len(target), -1)
        flat[row, rng.integers(flat.shape[1])] = rng.choice([np.nan, np.inf, -np.inf])


# ---------------------------------------------------------------- the harness run -------------

def _run(harness: Path, tmp: Path, inputs: dict, ints: dict, n: int, p: int) -> dict:
    header = np.array([n, p, WIDTH, HEIGHT, TILE_SIZE], np.int32)
    order = ["w2c", "intrinsics", "centre", "log_scales", "corr_logits", "means", "dir_means",
             "s_c", "gains", "s_dd_inv", "opacity_logits", "rgb", "sh", "ref_means2d", "ref_radii",
             "px_means", "px_conics", "px_opacity", "pixels"]
    with open(tmp / "in.bin", "wb") as f:
        header.tofile(f)
        for name in order:
            dtype = np.int32 if name in ints else np.float32
            np.ascontiguousarray({**inputs, **ints}[name], dtype=dtype).tofile(f)
    result = subprocess.run([str(harness), str(tmp / "in.bin"), str(tmp / "out.bin")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    raw = (tmp / "out.bin").read_bytes()
    layout = [("s_c", 9), ("gains", 9), ("s_dd_inv", 9), ("mu_c", 3), ("alpha", 1),
              ("means2d", 2), ("conics", 3), ("depths", 1), ("colors", 3), ("radii", 1),
              ("rects", 4), ("pixel_alpha", None)]
    out, offset = {}, 0
    for name, width in layout:
        count = p if width is None else n * width
        dtype = np.int32 if name in ("radii", "rects") else np.float32
        values = np.frombuffer(raw, dtype, count, offset)
        out[name] = values.reshape(n, width) if width and width > 1 else values
        offset += 4 * count
    assert offset == len(raw)
    return out


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
    params, groups = _parameters()
    n = len(groups)
    poisoned = np.flatnonzero(groups == "non_finite")
    _poison(params, ["log_scales", "corr_logits"], poisoned[: GROUP // 2], seed=1)
    stage2 = {k: v.astype(np.float32) for k, v in params.items()}
    precomputed = [t.numpy() for t in precompute(torch.from_numpy(stage2["log_scales"]),
                                                 torch.from_numpy(stage2["corr_logits"]))]
    stage2.update({name: m.copy() for name, m in zip(MATRICES, precomputed)})
    _poison(stage2, ["means", "dir_means", "opacity_logits", "rgb", "sh", *MATRICES],
            poisoned[GROUP // 2:], seed=2)

    t = {k: torch.from_numpy(v) for k, v in stage2.items()}
    w2c, intrinsics, centre = (x.to(F32) for x in _camera())
    mu_c, alpha = slice_gaussians(t["means"], t["dir_means"], t["gains"], t["s_dd_inv"],
                                  t["opacity_logits"], centre)
    ref = slice_project(t["means"], t["dir_means"], t["s_c"], t["gains"], t["s_dd_inv"],
                        t["opacity_logits"], t["rgb"], t["sh"], w2c, intrinsics, centre,
                        WIDTH, HEIGHT)
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
    """Per Gaussian, the sizes that bound slicing's float32 rounding (float64, from its inputs):

    mm [n]: |mu_p| + |K| (|delta| + 1), summed over entries: what mu_c = mu_p + K delta adds up,
    with delta a difference of unit vectors, so that delta carries an absolute rounding of a few
    EPS however small it is; quad [n]: |delta|^T |S| |delta| + 2 |S| |delta| summed, the same for
    delta^T S_dd^-1 delta.
    """
    x = {k: case["inputs"][k].astype(np.float64) for k in ("means", "dir_means", "gains",
                                                            "s_dd_inv")}
    centre = case["camera"][2].numpy().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        view = x["means"] - centre
        view /= np.maximum(np.linalg.norm(view, axis=1, keepdims=True), 1e-12)
        mean_dir = x["dir_means"] / np.maximum(
            np.linalg.norm(x["dir_means"], axis=1, keepdims=True), 1e-12)
        delta = np.abs(view - mean_dir)
        gains, s_inv = np.abs(x["gains"]), np.abs(x["s_dd_inv"])
        mm = np.abs(x["means"]).sum(1) + (gains @ (delta + 1.0)[..., None]).sum((1, 2))
        s_delta = (s_inv @ delta[..., None])[..., 0]
        quad = (delta * s_delta).sum(1) + 2.0 * s_delta.sum(1)
    return mm, quad


def _camera_error(case: dict) -> np.ndarray:
    """[n] mm: the float32 rounding allowed in a Gaussian's camera coordinates.

    p = R mu_c + t sums terms as large as those of mu_c (_slice_terms) and |t|; the two sides sum
    them in other orders (torch's BLAS also fuses multiply-adds), so p differs by a few ulps of
    those terms even where p itself is small (near the camera): CAMERA_ULPS of them.
    """
    translation = np.abs(case["camera"][0][:3, 3].numpy()).sum()
    return CAMERA_ULPS * EPS * (_slice_terms(case)[0] + translation)


def _reference_radius_before_ceil(case: dict) -> np.ndarray:
    """[n] the reference's float32 radius before its ceil (slice_project's _radii, unrounded)."""
    w2c, intrinsics, _ = case["camera"]
    cam = torch.from_numpy(case["ref"]["mu_c"]) @ w2c[:3, :3].T + w2c[:3, 3]
    depth = cam[:, 2]
    safe_depth = torch.where(depth > 1.0, depth, torch.ones_like(depth))
    cov = _ewa_covariance(cam, safe_depth, torch.from_numpy(case["inputs"]["s_c"]), w2c[:3, :3],
                          intrinsics, WIDTH, HEIGHT)
    a, b, c = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    mid = 0.5 * (a + c)
    lambda_max = mid + torch.sqrt(torch.clamp(mid * mid - (a * c - b * b), min=0.1))
    alpha = torch.from_numpy(case["ref"]["alpha"])
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
    """means2d, conics, depths and colours agree within the rounding of the camera coordinates.

    With e = _camera_error (mm) and z the depth (>= 1 mm): depth within e; means2d within
    1e-3 px + (fx + |m - c|) / z * e (the pinhole's derivatives); conics within
    1e-4 + 4 e / z + 4 EPS kappa of their largest entry (they scale as z^2, and det = a c - b^2
    loses kappa = (|a c| + b^2) / |det| in relative precision, up to 1e4 for huge elongated
    footprints); colours within 1e-6 + 1e-5 |colour| (a sum of 9 SH terms of size ~1). For a
    Gaussian in the scene (z ~ 580 mm) the means2d tolerance is about 2e-3 px; near the near
    plane it grows as 1/z, as the reference's own float32 error does.
    """
    host, ref, groups = case["host"], case["ref"], case["groups"]
    intrinsics = case["camera"][1].numpy()
    fx, principal = intrinsics[0, 0], intrinsics[:2, 2]
    for name in ("means2d", "conics", "depths", "colors"):
        np.testing.assert_array_equal(np.isfinite(host[name]), np.isfinite(ref[name]), name)
    finite = _finite_rows(ref["means2d"], ref["conics"], ref["depths"], ref["colors"])
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


# ---------------------------------------------------------------- stage 4: blend ---------------
# blend_harness.cpp runs blend_fwd.cu's per-pixel loop (blend_step over each 16x16 tile's sorted
# instances, then finish_pixel) on the reference's own slice_project and tile_keys outputs.

BLEND_CAMERA = Camera(position=(0.0, 0.0, 0.0), focal_point=(0.0, -1.0, 0.0),
                      view_up=(0.0, 0.0, 1.0), view_angle=40.0)
BLEND_BACKGROUND = (0.2, 0.5, 0.9)


def _blend_scene(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n random Gaussians in front of BLEND_CAMERA (test_render_reference.py's scene)."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.stack([torch.rand(n, generator=gen) * 60 - 30,
                         -(torch.rand(n, generator=gen) * 100 + 150),
                         torch.rand(n, generator=gen) * 40 - 20], dim=-1)
    return {
        "means": means,
        "dir_means": torch.randn(n, 3, generator=gen),
        "log_scales": torch.rand(n, 6, generator=gen) * 1.5 + 0.3,
        "corr_logits": torch.randn(n, 15, generator=gen),
        "opacity_logits": torch.randn(n, generator=gen) + 1.0,
        "rgb": torch.rand(n, 3, generator=gen),
        "sh": torch.cat([torch.full((n, 1), 3.0), torch.randn(n, 8, generator=gen) * 0.3], dim=1),
    }


def _stacked_scene(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n large, nearly opaque Gaussians stacked along the view axis: transmittance runs out."""
    s = _blend_scene(n, seed)
    s["means"][:, 0] = s["means"][:, 0] * 0.1
    s["means"][:, 2] = s["means"][:, 2] * 0.1
    s["log_scales"][:, :3] += 2.0
    s["opacity_logits"] = s["opacity_logits"] + 6.0
    return s


def _blend_project(s: dict, width: int, height: int) -> dict[str, torch.Tensor]:
    w2c, intrinsics, centre = camera_tensors(BLEND_CAMERA, width, height, torch.device("cpu"), F32)
    s_c, gains, s_dd_inv = precompute(s["log_scales"], s["corr_logits"])
    return slice_project(s["means"], s["dir_means"], s_c, gains, s_dd_inv, s["opacity_logits"],
                         s["rgb"], s["sh"], w2c, intrinsics, centre, width, height)


BLEND_CASES = {  # name: (scene, width, height); no size is a multiple of 16 but the last
    "random": (lambda: _blend_scene(400, seed=5), 100, 75),
    "stacked": (lambda: _stacked_scene(120, seed=6), 50, 40),
    "empty": (lambda: _blend_scene(0, seed=7), 33, 17),
    "tiny_image": (lambda: _blend_scene(200, seed=8), 7, 5),
    "square": (lambda: _blend_scene(300, seed=9), 64, 48),
}


def _run_blend(exe: Path, tmp: Path, pr: dict, ids: torch.Tensor, ranges: torch.Tensor,
               width: int, height: int) -> dict[str, np.ndarray]:
    with open(tmp / "in.bin", "wb") as f:
        np.array([len(pr["depths"]), len(ids), width, height], np.int64).tofile(f)
        for name in ("means2d", "conics", "colors", "opacities", "depths"):
            np.ascontiguousarray(pr[name].numpy(), np.float32).tofile(f)
        np.array(BLEND_BACKGROUND, np.float32).tofile(f)
        ids.numpy().astype(np.int64).tofile(f)
        ranges.numpy().astype(np.int64).tofile(f)
    result = subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    raw, pixels, out, offset = (tmp / "out.bin").read_bytes(), width * height, {}, 0
    for name, channels, dtype in (("rgb", 3, np.float32), ("alpha", 1, np.float32),
                                  ("depth", 1, np.float32), ("final_t", 1, np.float32),
                                  ("n_consumed", 1, np.int32)):
        values = np.frombuffer(raw, dtype, pixels * channels, offset)
        out[name] = values.reshape(height, width, 3) if channels == 3 else values.reshape(height,
                                                                                          width)
        offset += 4 * pixels * channels
    assert offset == len(raw)
    return out


@pytest.fixture(scope="module", params=sorted(BLEND_CASES))
def blend_case(request, blend_harness, tmp_path_factory) -> dict:
    return _blend_case(request.param, blend_harness, tmp_path_factory)


def _blend_case(name: str, blend_harness: Path, tmp_path_factory) -> dict:
    """The reference's blend and the harness's outputs for BLEND_CASES[name]."""
    make, width, height = BLEND_CASES[name]
    pr = _blend_project(make(), width, height)
    ids, ranges = tile_keys(pr["means2d"], pr["radii"], pr["depths"], width, height, TILE_SIZE)
    bg = torch.tensor(BLEND_BACKGROUND, dtype=F32)
    args = (pr["means2d"], pr["conics"], pr["colors"], pr["opacities"], pr["depths"], ids, ranges,
            width, height, bg, TILE_SIZE)
    ref = [t.numpy() for t in blend(*args)]
    host = _run_blend(blend_harness, tmp_path_factory.mktemp("blend"), pr, ids, ranges, width,
                      height)
    return {"name": name, "args": args, "ref": ref, "host": host, "ranges": ranges,
            "width": width, "height": height}


def test_blend_host_vs_torch(blend_case):
    """rgb and alpha within 1e-5 (float32 sums of tens of terms; the reference forms T in float64
    by log1p and cumulative sums, the host by products), depth within 1e-3 mm."""
    (rgb, alpha, depth), host = blend_case["ref"], blend_case["host"]
    np.testing.assert_allclose(host["rgb"], rgb, rtol=0, atol=1e-5)
    np.testing.assert_allclose(host["alpha"], alpha, rtol=0, atol=1e-5)
    np.testing.assert_allclose(host["depth"], depth, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(host["alpha"] > 0, alpha > 0)
    if blend_case["name"] == "empty":
        assert len(blend_case["args"][5]) == 0 and (host["alpha"] == 0).all()
        np.testing.assert_array_equal(host["rgb"], np.broadcast_to(BLEND_BACKGROUND, rgb.shape)
                                      .astype(np.float32))
    else:
        assert (alpha > 0).mean() > 0.2


def test_blend_backward_state(blend_case):
    """final_t is the T behind the background (1 - alpha up to rounding, never below 1e-4);
    n_consumed counts instances up to the last contributing one, within the pixel's tile."""
    host, width, height = blend_case["host"], blend_case["width"], blend_case["height"]
    t, consumed = host["final_t"], host["n_consumed"]
    assert (t >= blend_module.MIN_TRANSMITTANCE).all() and (t <= 1.0).all()
    np.testing.assert_allclose(t, 1.0 - host["alpha"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(consumed > 0, host["alpha"] > 0)
    ranges = blend_case["ranges"].numpy()
    counts = (ranges[:, 1] - ranges[:, 0]).reshape(-1, (width + TILE_SIZE - 1) // TILE_SIZE)
    per_pixel = np.repeat(np.repeat(counts, TILE_SIZE, 0), TILE_SIZE, 1)[:height, :width]
    assert (consumed <= per_pixel).all()


def test_blend_termination(blend_harness, tmp_path_factory, monkeypatch):
    """In the stacked scene the 1e-4 transmittance stop changes the image by more than 10x the
    tolerance (what it drops is at most 1e-4 of the colours behind), and the host follows it."""
    blend_case = _blend_case("stacked", blend_harness, tmp_path_factory)
    monkeypatch.setattr(blend_module, "MIN_TRANSMITTANCE", 0.0)
    unstopped = blend(*blend_case["args"])[0].numpy()
    host = blend_case["host"]
    dropped = np.abs(unstopped - blend_case["ref"][0]).max(-1)
    assert dropped.max() > 1e-4 and (dropped > 1e-5).mean() > 0.2  # many pixels stopped
    assert np.abs(host["rgb"] - unstopped).max() > 1e-4
    assert np.abs(host["rgb"] - blend_case["ref"][0]).max() < 1e-5
