"""The blend's CUDA math built by the host C++ compiler vs the PyTorch reference's blend.

Testing/cuda_host/blend_harness.cpp runs blend_fwd.cu's per-pixel loop (blend_step over each
16x16 tile's sorted instances, then finish_pixel) on the reference's own slice_project and
tile_keys outputs; blend_bwd_harness.cpp runs blend_bwd.cu's per-pixel walk (start_pixel_bwd,
then blend_step_bwd back to front from the forward's final T) on those and on random
cotangents, and its gradients are compared with torch autograd through the reference.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from cuda_host import host_harness
from cuda_host.scenes import BLEND_BACKGROUND, BLEND_CASES, F32, project_scene

from RenderFMLib.render.reference import blend, tile_keys
from RenderFMLib.render.reference.tile_keys import TILE_SIZE

blend_module = importlib.import_module("RenderFMLib.render.reference.blend")  # not the function
FOOTPRINT = ("means2d", "conics", "colors", "opacities", "depths")  # blend's float inputs
GRADS = (("means2d", 2), ("conics", 3), ("opacities", 1), ("colors", 3), ("depths", 1))


@pytest.fixture(scope="module")
def blend_harness(tmp_path_factory):
    return host_harness.build("blend_harness", tmp_path_factory.mktemp("blend_harness"))


@pytest.fixture(scope="module")
def blend_bwd_harness(tmp_path_factory):
    return host_harness.build("blend_bwd_harness", tmp_path_factory.mktemp("blend_bwd_harness"))


def _scene_inputs(pr: dict, ids: torch.Tensor, ranges: torch.Tensor, width: int,
                  height: int) -> list:
    """blend_harness's input arrays (also the start of blend_bwd_harness's)."""
    return [(np.array([len(pr["depths"]), len(ids), width, height]), np.int64),
            *((pr[name].detach().numpy(), np.float32) for name in FOOTPRINT),
            (np.array(BLEND_BACKGROUND), np.float32), (ids.numpy(), np.int64),
            (ranges.numpy(), np.int64)]


def _run_blend(exe, tmp, pr, ids, ranges, width: int, height: int) -> dict[str, np.ndarray]:
    image = (height, width)
    return host_harness.run(exe, tmp, _scene_inputs(pr, ids, ranges, width, height),
                            [("rgb", np.float32, (*image, 3)), ("alpha", np.float32, image),
                             ("depth", np.float32, image), ("final_t", np.float32, image),
                             ("n_consumed", np.int32, image)])


@pytest.fixture(scope="module", params=sorted(BLEND_CASES))
def blend_case(request, blend_harness, tmp_path_factory) -> dict:
    return _blend_case(request.param, blend_harness, tmp_path_factory)


def _blend_case(name: str, blend_harness, tmp_path_factory) -> dict:
    """The reference's blend and the harness's outputs for BLEND_CASES[name]."""
    make, width, height = BLEND_CASES[name]
    pr = project_scene(make(), width, height)
    ids, ranges = tile_keys(pr["means2d"], pr["radii"], pr["depths"], width, height, TILE_SIZE)
    bg = torch.tensor(BLEND_BACKGROUND, dtype=F32)
    args = (pr["means2d"], pr["conics"], pr["colors"], pr["opacities"], pr["depths"], ids, ranges,
            width, height, bg, TILE_SIZE)
    ref = [t.numpy() for t in blend(*args)]
    host = _run_blend(blend_harness, tmp_path_factory.mktemp("blend"), pr, ids, ranges, width,
                      height)
    return {"name": name, "args": args, "ref": ref, "host": host, "ranges": ranges, "pr": pr,
            "ids": ids, "width": width, "height": height}


# ---------------------------------------------------------------- forward ---------------------

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


# ---------------------------------------------------------------- backward --------------------

BWD_FLOOR = 1e-5  # of each gradient's largest entry over the scene; see the test


def _cotangents(width: int, height: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Random dL/d(rgb [H, W, 3], alpha [H, W], depth [H, W] mm); depth's scaled by 1/100 so that
    its terms (depths ~200 mm) weigh about as much as the others."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(height, width, 3, generator=gen), torch.randn(height, width, generator=gen),
            torch.randn(height, width, generator=gen) * 0.01)


def _autograd(case: dict, cotangents: tuple, dtype: torch.dtype) -> dict[str, np.ndarray]:
    """dL/d blend's float inputs by torch autograd through the reference run in `dtype`,
    L = sum of the outputs times the cotangents."""
    leaves = {k: case["pr"][k].detach().to(dtype).requires_grad_() for k in FOOTPRINT}
    outputs = blend(*(leaves[k] for k in FOOTPRINT), case["ids"], case["ranges"], case["width"],
                    case["height"], torch.tensor(BLEND_BACKGROUND, dtype=dtype), TILE_SIZE)
    loss = sum((out * cot.to(dtype)).sum() for out, cot in zip(outputs, cotangents))
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {k: g.double().numpy() for k, g in zip(leaves, grads)}


@pytest.fixture(scope="module")
def blend_grads(blend_case, blend_bwd_harness, tmp_path_factory) -> dict:
    """The harness's gradients and autograd's through the reference in float64 and float32."""
    case, host = blend_case, blend_case["host"]
    width, height, n = case["width"], case["height"], len(case["pr"]["depths"])
    cotangents = _cotangents(width, height, seed=11)
    inputs = [*_scene_inputs(case["pr"], case["ids"], case["ranges"], width, height),
              *((host[k], np.float32) for k in ("alpha", "depth", "final_t")),
              (host["n_consumed"], np.int32), *((c.numpy(), np.float32) for c in cotangents)]
    got = host_harness.run(blend_bwd_harness, tmp_path_factory.mktemp("blend_bwd"), inputs,
                           [(k, np.float32, (n, c)) for k, c in GRADS])
    return {"host": got, "f64": _autograd(case, cotangents, torch.float64),
            "f32": _autograd(case, cotangents, torch.float32), "n": n}


def test_blend_backward_host_vs_autograd(blend_case, blend_grads):
    """dL/d means2d, conics, opacities, colours and depths agree with autograd through the
    reference in float64, per Gaussian and parameter, within 4x the error of autograd's own
    float32 run plus 1e-5 of that gradient's largest entry over the scene.

    Why this form: both float32 sides sum per-pixel terms (tens to thousands, each already a
    difference: dL/dalpha = dL/dw T - (sum behind) / (1 - alpha)) in different orders and walk T
    differently (the host divides the final T by 1 - alpha back to front, the reference forms T
    in float64 by log1p and cumulative sums), so their errors follow each gradient's
    conditioning, which the float32 reference's own error measures; the floor covers Gaussians
    where that error happens to be small. Measured: either side's error reaches 3.5e-6 of the
    scale, the host's at most 0.22 of this tolerance; a wrong or missing term (the T of the
    Gaussians behind, the 0.99 cap's gate, the background, depth's 1 / alpha) is off by 2e-3 to
    O(1) of the scale.
    """
    n, host, f64, f32 = (blend_grads[k] for k in ("n", "host", "f64", "f32"))
    if n == 0:
        return
    for name, _ in GRADS:
        got, want, torch32 = (x[name].reshape(n, -1).astype(np.float64) for x in (host, f64, f32))
        scale = np.abs(want).max()
        assert scale > 0, name  # every gradient is exercised
        err = np.abs(got - want).max(1)
        tol = 4.0 * np.abs(torch32 - want).max(1) + BWD_FLOOR * scale
        worst = int(np.argmax(err / tol))
        assert (err <= tol).all(), (f"{blend_case['name']} d{name}: Gaussian {worst} error "
                                    f"{err[worst]:.3g}, tolerance {tol[worst]:.3g}")


def test_blend_backward_reaches_every_contributor(blend_case, blend_grads):
    """A Gaussian gets a non-zero colour gradient exactly when it contributes to some pixel
    (autograd's pattern), and exactly zero otherwise (no stray atomics)."""
    n = blend_grads["n"]
    got = np.abs(blend_grads["host"]["colors"].reshape(n, -1)).max(1) if n else np.zeros(0)
    want = np.abs(blend_grads["f32"]["colors"].reshape(n, -1)).max(1) if n else np.zeros(0)
    np.testing.assert_array_equal(got > 0, want > 0)
    if blend_case["name"] != "empty":
        assert (want > 0).mean() > 0.3
