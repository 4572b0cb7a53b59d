"""Test scenes shared by the host checks of the CUDA math (Testing/test_cuda_*_host.py).

Two kinds:
- `stage2_inputs`: thousands of random Gaussians about a CT-sized scene seen by a real orbit
  camera, plus groups of degenerate ones (huge and tiny scales, near-singular correlations,
  behind the camera, at the near plane, off-screen, faint, special directions, NaN or Inf
  entries), as float32 inputs of slice_project (DESIGN.md section 8);
- `BLEND_CASES`: small images of projected random Gaussians for the blend (a stacked scene whose
  transmittance runs out, an empty one, a tiny image...), projected by the reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from RenderFMLib.camera import Camera, camera_tensors, orbit_camera
from RenderFMLib.render.reference import precompute, slice_project

WIDTH, HEIGHT = 320, 240  # px; not square, so a swap of x and y shows
CENTER = np.array([10.0, -20.0, 30.0])  # RAS mm, the orbit's focus
F32 = torch.float32
RANDOM = 4096  # ordinary Gaussians
GROUP = 256  # Gaussians per degenerate group
GROUPS = ("random", "huge", "tiny", "correlated", "behind", "near_plane", "off_screen", "faint",
          "special", "non_finite")
MATRICES = ("s_c", "gains", "s_dd_inv")


def camera() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(world_to_camera [4, 4], intrinsics [3, 3], centre [3] RAS mm), float64."""
    orbit = orbit_camera(CENTER, radius=150.0, azimuth=35.0, elevation=20.0)
    return camera_tensors(orbit, WIDTH, HEIGHT, torch.device("cpu"), torch.float64)


def _at_camera_points(points_cam: np.ndarray) -> np.ndarray:
    """RAS mm [n, 3] of camera-frame points [n, 3] mm."""
    w2c = camera()[0].numpy()
    return (points_cam - w2c[:3, 3]) @ w2c[:3, :3]


def parameters(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
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
    # white specular light: positive and negative sums (the clamp at 0), from a generator of its
    # own so that every other draw stays as it was
    p["specular_sh"] = (np.random.default_rng(seed + 100).normal(scale=0.3, size=(n, 9))
                        + np.eye(9)[0] * 0.2)
    names = np.array(["random"] * RANDOM + [g for g in GROUPS[1:] for _ in range(GROUP)])
    at = {g: np.flatnonzero(names == g) for g in GROUPS}
    p["log_scales"][at["huge"], :3] += rng.uniform(4.0, 9.0, (GROUP, 3))
    shrink = rng.uniform(0.0, 9.0, (GROUP, 6)) * (rng.uniform(size=(GROUP, 6)) < 0.5)
    p["log_scales"][at["tiny"]] -= shrink
    signs = rng.choice([-1.0, 1.0], (GROUP, 15))
    p["corr_logits"][at["correlated"]] = signs * rng.uniform(5.0, 9.0, (GROUP, 15))
    eye = camera()[2].numpy()
    p["means"][at["behind"]] = (eye + (eye - CENTER) * rng.uniform(0.0, 0.5, (GROUP, 1))
                                + rng.normal(scale=30.0, size=(GROUP, 3)))
    depth = rng.choice([0.5, 0.999, 1.001, 1.5, 3.0, 10.0], GROUP)  # mm; the near plane is 1
    lateral = rng.uniform(-1.0, 1.0, (GROUP, 2)) * depth[:, None]
    p["means"][at["near_plane"]] = _at_camera_points(np.column_stack([lateral, depth]))
    p["corr_logits"][at["near_plane"]] = 0.0  # K = 0 exactly: mu_c = mu_p stays at that depth
    depth = rng.uniform(20.0, 600.0, GROUP)
    half_fov = np.array([WIDTH, HEIGHT]) / 2.0 / camera()[1][0, 0].item()  # tan(FOV / 2)
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


def poison(arrays: dict[str, np.ndarray], names: list[str], rows: np.ndarray, seed: int) -> None:
    """Put one NaN, +Inf or -Inf into one entry of one of `names` for each of `rows`."""
    rng = np.random.default_rng(seed)
    for row in rows:
        target = arrays[names[rng.integers(len(names))]]
        flat = target.reshape(len(target), -1)
        flat[row, rng.integers(flat.shape[1])] = rng.choice([np.nan, np.inf, -np.inf])


def stage2_inputs(seed: int = 0) -> tuple[dict[str, np.ndarray], list[np.ndarray], np.ndarray]:
    """(float32 inputs of precompute and slice_project by name, the reference's float32
    precompute (S_c, K, S_dd^-1) of the parameters, each Gaussian's group name).

    Half the "non_finite" group gets a NaN or Inf among its scales or correlations (so its
    precomputed matrices are non-finite), the other half one among slice_project's inputs.
    """
    params, groups = parameters(seed)
    poisoned = np.flatnonzero(groups == "non_finite")
    poison(params, ["log_scales", "corr_logits"], poisoned[: GROUP // 2], seed=seed + 1)
    inputs = {k: v.astype(np.float32) for k, v in params.items()}
    precomputed = [t.numpy() for t in precompute(torch.from_numpy(inputs["log_scales"]),
                                                 torch.from_numpy(inputs["corr_logits"]))]
    inputs.update({name: m.copy() for name, m in zip(MATRICES, precomputed)})
    poison(inputs, ["means", "dir_means", "opacity_logits", "rgb", "sh", "specular_sh", *MATRICES],
           poisoned[GROUP // 2:], seed=seed + 2)
    return inputs, precomputed, groups


def synthetic_footprints(n: int, width: int, height: int, seed: int):
    """(means2d [n, 2] px, radii [n] int32, depths [n] mm, width, height): n projected footprints
    in and around a width x height image, radii from 0 (culled, NaN means among them) to 2^20,
    depths from 4 values only (ties in every tile), for tile binning."""
    rng = np.random.default_rng(seed)
    means2d = rng.uniform(-40.0, [width + 40.0, height + 40.0], (n, 2)).astype(np.float32)
    radii = rng.choice([0, 1, 3, 8, 16, 17, 40, 1 << 20], n, p=[.2, .2, .2, .15, .1, .06, .06, .03])
    depths = rng.choice([1.5, 2.0, 100.0, 250.25], n).astype(np.float32)
    culled = np.flatnonzero(radii == 0)
    means2d[culled[: len(culled) // 4]] = np.nan
    return (torch.from_numpy(means2d), torch.from_numpy(radii.astype(np.int32)),
            torch.from_numpy(depths), width, height)


# ---------------------------------------------------------------- blend scenes ----------------

BLEND_CAMERA = Camera(position=(0.0, 0.0, 0.0), focal_point=(0.0, -1.0, 0.0),
                      view_up=(0.0, 0.0, 1.0), view_angle=40.0)
BLEND_BACKGROUND = (0.2, 0.5, 0.9)


def blend_scene(n: int, seed: int) -> dict[str, torch.Tensor]:
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
        "specular_sh": torch.randn(n, 9, generator=gen) * 0.3,
    }


def stacked_scene(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n large, nearly opaque Gaussians stacked along the view axis: transmittance runs out."""
    s = blend_scene(n, seed)
    s["means"][:, 0] = s["means"][:, 0] * 0.1
    s["means"][:, 2] = s["means"][:, 2] * 0.1
    s["log_scales"][:, :3] += 2.0
    s["opacity_logits"] = s["opacity_logits"] + 6.0
    return s


def opaque_scene(n: int, seed: int) -> dict[str, torch.Tensor]:
    """n large Gaussians whose direction means point along their view from BLEND_CAMERA (no
    opacity falloff), opacity about 0.9999: alpha reaches the 0.99 cap within 0.14 sigma of a
    centre, which takes a footprint of tens of pixels to cover whole pixels."""
    s = blend_scene(n, seed)
    s["dir_means"] = s["means"] - torch.tensor(BLEND_CAMERA.position, dtype=F32)
    s["log_scales"][:, :3] += 3.0
    s["opacity_logits"] = s["opacity_logits"] + 8.0
    return s


def project_scene(s: dict, width: int, height: int) -> dict[str, torch.Tensor]:
    """The reference's slice_project of scene `s` seen by BLEND_CAMERA, float32."""
    w2c, intrinsics, centre = camera_tensors(BLEND_CAMERA, width, height, torch.device("cpu"), F32)
    s_c, gains, s_dd_inv = precompute(s["log_scales"], s["corr_logits"])
    return slice_project(s["means"], s["dir_means"], s_c, gains, s_dd_inv, s["opacity_logits"],
                         s["rgb"], s["sh"], s["specular_sh"], w2c, intrinsics, centre, width,
                         height)


BLEND_CASES = {  # name: (scene, width, height); no size is a multiple of 16 but the last
    "random": (lambda: blend_scene(400, seed=5), 100, 75),
    "stacked": (lambda: stacked_scene(120, seed=6), 50, 40),
    "empty": (lambda: blend_scene(0, seed=7), 33, 17),
    "tiny_image": (lambda: blend_scene(200, seed=8), 7, 5),
    "square": (lambda: blend_scene(300, seed=9), 64, 48),
    "dense": (lambda: blend_scene(3000, seed=10), 130, 90),
    "opaque": (lambda: opaque_scene(20, seed=11), 48, 36),
}
