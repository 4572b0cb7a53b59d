"""slice_project's backward math (gaussian_math_bwd.cuh) built by g++ vs torch autograd.

Testing/cuda_host/slice_project_bwd_harness.cpp runs slice_project_bwd, the per-Gaussian body of
slice_project_bwd.cu, on the CPU for the random and degenerate Gaussians of
cuda_host/scenes.stage2_inputs (near plane, behind the camera, off-screen, tiny and huge
scales, zero direction vectors, NaN and Inf entries...) with random cotangents on every output,
an eighth of them all zero (culled Gaussians in a render get exactly that). Autograd runs through
the PyTorch reference in float64 (the truth) and in float32 (the yardstick: what rounding alone
costs a float32 implementation of the same formulas).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cuda_host import host_harness
from cuda_host.rounding import camera_error
from cuda_host.scenes import HEIGHT, WIDTH, camera, stage2_inputs

from RenderFMLib.render.reference import slice_project

# slice_project's differentiable inputs
INPUTS = {"means": (3,), "dir_means": (3,), "s_c": (3, 3), "gains": (3, 3), "s_dd_inv": (3, 3),
          "opacity_logits": (), "rgb": (3,), "sh": (9,), "specular_sh": (9,)}
OUTPUTS = {"means2d": 2, "conics": 3, "depths": 1, "opacities": 1, "colors": 3}
ZERO_FRACTION = 0.125  # of Gaussians whose cotangents are all zero
FLOOR = 1e-6  # of each gradient's largest entry over the Gaussian's group; see the test


@pytest.fixture(scope="module")
def grads(tmp_path_factory) -> dict:
    """The harness's gradients and autograd's (float64, float32) for the same cotangents."""
    inputs, _, groups = stage2_inputs(seed=0)
    n = len(groups)
    rng = np.random.default_rng(5)
    # S_c and S_dd^-1 are symmetric up to rounding; autograd treats them as any matrices (their
    # gradients are not symmetric), so a quarter of the random Gaussians get skew parts that
    # tell each from its transpose.
    skewed = np.flatnonzero((groups == "random") & (rng.uniform(size=n) < 0.25))
    for name in ("s_c", "s_dd_inv"):
        skew = rng.normal(scale=0.1, size=(len(skewed), 3, 3)).astype(np.float32)
        inputs[name][skewed] += (skew - skew.transpose(0, 2, 1)) * np.abs(inputs[name][skewed])
    cotangents = {k: rng.normal(size=(n, w) if w > 1 else n).astype(np.float32)
                  for k, w in OUTPUTS.items()}
    zero = rng.uniform(size=n) < ZERO_FRACTION
    for values in cotangents.values():
        values[zero] = 0.0
    w2c, intrinsics, centre = _camera()
    exe = host_harness.build("slice_project_bwd_harness", tmp_path_factory.mktemp("sp_bwd"))
    host = host_harness.run(
        exe, tmp_path_factory.mktemp("sp_bwd_run"),
        [(np.array([n, WIDTH, HEIGHT]), np.int32),
         *((x.numpy(), np.float32) for x in (w2c, intrinsics, centre)),
         *((inputs[k], np.float32) for k in INPUTS),
         *((v, np.float32) for v in cotangents.values())],
        [(k, np.float32, (n, int(np.prod(shape)))) for k, shape in INPUTS.items()])
    projected = slice_project(*(torch.from_numpy(inputs[k]) for k in INPUTS), w2c, intrinsics,
                              centre, WIDTH, HEIGHT)
    return {"host": host, "f64": _autograd(inputs, cotangents, torch.float64),
            "f32": _autograd(inputs, cotangents, torch.float32), "groups": groups, "zero": zero,
            "depths": projected["depths"].double().numpy(),
            "camera_error": camera_error(inputs, w2c, centre)}


def _camera() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scenes.camera() in float32, with fy = 1.25 fx (non-square pixels tell fx from fy)."""
    w2c, intrinsics, centre = (x.to(torch.float32) for x in camera())
    intrinsics[1, 1] *= 1.25
    return w2c, intrinsics, centre


def _autograd(inputs: dict, cotangents: dict, dtype: torch.dtype) -> dict[str, np.ndarray]:
    """dL/d slice_project's inputs [n, width] by autograd through the reference in `dtype`,
    L = sum of its outputs times the cotangents."""
    leaves = {k: torch.from_numpy(inputs[k]).to(dtype).requires_grad_() for k in INPUTS}
    w2c, intrinsics, centre = (x.to(dtype) for x in _camera())
    out = slice_project(*leaves.values(), w2c, intrinsics, centre, WIDTH, HEIGHT)
    loss = sum((out[k] * torch.from_numpy(v).to(dtype)).sum() for k, v in cotangents.items())
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {k: g.double().numpy().reshape(len(g), -1) for k, g in zip(leaves, grads)}


def _finite_rows(grads: dict[str, np.ndarray]) -> np.ndarray:
    return np.all([np.isfinite(g).all(1) for g in grads.values()], axis=0)


def test_slice_project_backward_host_vs_autograd(grads):
    """Every gradient agrees with float64 autograd, per Gaussian and input, within
    4 e32 + 1e-6 scale + 4 (e / z) |g|, where e32 is autograd's own float32 error on that
    Gaussian, scale that gradient's largest entry over the Gaussian's group (scene.GROUPS: the
    zero vectors of "special" reach 1e12), |g| the Gaussian's largest
    entry, and e / z the relative rounding of its depth (rounding.camera_error e, depth z > 1 mm).

    Why: both float32 sides evaluate the same formulas with other rounding, so their errors
    follow the same conditioning, which e32 measures per Gaussian; e / z adds what cancellation
    in p = R mu_c + t leaves in the depth near the near plane (the projection's derivatives go
    as 1/z^3, so both sides err by a few e / z there, independently); the floor covers Gaussians
    where float32 autograd happens to be exact. Measured: at most 0.25 of this tolerance over all
    groups; a wrong or missing term (a clamp's gate, the (0, 1) covariance entry, the near-plane
    switch) is off by O(1) of |g|.
    """
    host, f64, f32, groups = grads["host"], grads["f64"], grads["f32"], grads["groups"]
    finite = _finite_rows(f64)
    z = grads["depths"]
    with np.errstate(invalid="ignore"):  # NaN depths, excluded below
        relative = np.where(z > 1.0, grads["camera_error"] / np.where(z > 1.0, z, 1.0), 0.0)
    for name in INPUTS:
        got, want, torch32 = (x[name][finite].astype(np.float64) for x in (host, f64, f32))
        assert np.isfinite(got).all(), name
        magnitude, group = np.abs(want).max(1), groups[finite]
        scale = np.array([magnitude[group == g].max() for g in group])  # over its group
        err = np.abs(got - want).max(1)
        tol = (4.0 * np.abs(torch32 - want).max(1) + FLOOR * scale
               + 4.0 * relative[finite] * magnitude)
        worst = int(np.argmax(err / tol))
        assert (err <= tol).all(), (f"d{name}: Gaussian {np.flatnonzero(finite)[worst]} "
                                    f"({group[worst]}): error {err[worst]:.3g}, "
                                    f"tolerance {tol[worst]:.3g}")
        assert (magnitude[group == "random"] > 0).mean() > 0.5, name  # every gradient is exercised


def test_slice_project_backward_zero_cotangent(grads):
    """All-zero cotangents give exactly zero gradients, also for NaN or Inf Gaussians (autograd
    would give NaN there: 0 times a non-finite Jacobian); only those Gaussians have non-finite
    autograd gradients at all."""
    zero, groups = grads["zero"], grads["groups"]
    for name in INPUTS:
        assert (grads["host"][name][zero] == 0.0).all(), name
    finite = _finite_rows(grads["f64"])
    assert set(groups[~finite]) == {"non_finite"}
    assert (~finite & zero).any()  # the case autograd gets wrong is exercised
