"""The PyTorch reference renderer: slicing against the conditional Gaussian, gradients, and the
rasterizer against a brute-force per-pixel evaluation."""

import math

import numpy as np
import pytest
import torch

from RenderFMLib.camera import Camera, camera_tensors
from RenderFMLib.render.reference import blend, slice_gaussians, slice_project, tile_keys
from RenderFMLib.render.reference.precompute import covariance, precompute, precompute_direct
from RenderFMLib.render.reference.slice_project import COVARIANCE_BLUR_PX2 as BLUR
from RenderFMLib.render.reference.slice_project import OPACITY_LAMBDA
from RenderFMLib.sh import sh_basis

DOUBLE = torch.float64


def random_6d(n: int, seed: int, spread: float = 1.0) -> dict[str, torch.Tensor]:
    """Random 6D Gaussian parameters in float64 (strong correlations included)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "means": torch.randn(n, 3, generator=gen, dtype=DOUBLE) * 10.0,
        "dir_means": torch.randn(n, 3, generator=gen, dtype=DOUBLE),
        "log_scales": torch.randn(n, 6, generator=gen, dtype=DOUBLE) * 0.5 * spread,
        "corr_logits": torch.randn(n, 15, generator=gen, dtype=DOUBLE) * 2.0 * spread,
        "opacity_logits": torch.randn(n, generator=gen, dtype=DOUBLE),
    }


# ---------------------------------------------------------------- slicing ---------------------

def test_precompute_block_form_matches_direct_form():
    p = random_6d(200, seed=1, spread=1.5)
    block = precompute(p["log_scales"], p["corr_logits"])
    direct = precompute_direct(p["log_scales"], p["corr_logits"])
    for name, a, b in zip(("S_c", "K", "S_dd_inv"), block, direct):
        # Both are exact in exact arithmetic; 1e-8 relative leaves room for the conditioning of
        # S_dd with correlations up to 2 sigmoid(6) - 1 = 0.995.
        scale = b.abs().amax(dim=(-1, -2), keepdim=True).clamp_min(1.0)
        assert ((a - b).abs() / scale).max() < 1e-8, name


def test_slicing_matches_conditional_gaussian_from_the_precision_matrix():
    """Independent closed form: for a joint Gaussian with precision Lambda = Sigma^-1, the
    conditional of p given d has covariance Lambda_pp^-1 and mean mu_p - Lambda_pp^-1 Lambda_pd
    (d - mu_d); the marginal of d has covariance S_dd (numpy, float64)."""
    p = random_6d(50, seed=2)
    camera_centre = torch.tensor([100.0, -250.0, 40.0], dtype=DOUBLE)
    s_c, gains, s_dd_inv = precompute(p["log_scales"], p["corr_logits"])
    mu_c, alpha = slice_gaussians(p["means"], p["dir_means"], gains, s_dd_inv,
                                  p["opacity_logits"], camera_centre)
    sigma = covariance(p["log_scales"], p["corr_logits"]).numpy()
    for g in range(50):
        precision = np.linalg.inv(sigma[g])
        mu_p = p["means"][g].numpy()
        mu_d = p["dir_means"][g].numpy() / np.linalg.norm(p["dir_means"][g].numpy())
        d = (mu_p - camera_centre.numpy()) / np.linalg.norm(mu_p - camera_centre.numpy())
        cond_cov = np.linalg.inv(precision[:3, :3])
        cond_mean = mu_p - cond_cov @ precision[:3, 3:] @ (d - mu_d)
        marginal = (d - mu_d) @ np.linalg.solve(sigma[g][3:, 3:], d - mu_d)
        expected_alpha = 1 / (1 + math.exp(-p["opacity_logits"][g].item())) * math.exp(
            -OPACITY_LAMBDA * marginal)
        np.testing.assert_allclose(s_c[g].numpy(), cond_cov, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(mu_c[g].numpy(), cond_mean, rtol=1e-7, atol=1e-7)
        assert alpha[g].item() == pytest.approx(expected_alpha, rel=1e-9)


def test_slicing_matches_monte_carlo_conditional():
    """Sample the 6D Gaussian, keep samples whose direction lies near the view direction, and
    compare their position mean and covariance with mu_c and S_c (sampling error ~ 1/sqrt(n))."""
    p = random_6d(1, seed=3)
    p["log_scales"] = torch.tensor([[0.0, 0.3, -0.2, -1.0, -1.2, -0.9]], dtype=DOUBLE)
    centre = torch.tensor([0.0, -300.0, 0.0], dtype=DOUBLE)
    view = torch.nn.functional.normalize(p["means"] - centre, dim=-1)
    p["dir_means"] = view + torch.tensor([[0.15, -0.1, 0.1]], dtype=DOUBLE)  # delta ~ 1 sigma_d
    s_c, gains, s_dd_inv = precompute(p["log_scales"], p["corr_logits"])
    mu_c, _ = slice_gaussians(p["means"], p["dir_means"], gains, s_dd_inv, p["opacity_logits"],
                              centre)
    sigma = covariance(p["log_scales"], p["corr_logits"])[0]
    mu_d = torch.nn.functional.normalize(p["dir_means"][0], dim=0)
    d = torch.nn.functional.normalize(p["means"][0] - centre, dim=0)
    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(4_000_000, 6, generator=gen, dtype=DOUBLE)
    samples = normal @ torch.linalg.cholesky(sigma).T
    near = (samples[:, 3:] - (d - mu_d)).norm(dim=1) < 0.08
    kept = samples[near, :3] + p["means"][0]
    assert near.sum() > 2000
    assert torch.allclose(kept.mean(0), mu_c[0], atol=0.1 * s_c[0].diagonal().sqrt().max())
    assert torch.allclose(torch.cov(kept.T), s_c[0], atol=0.15 * s_c[0].diagonal().max())


def test_slicing_and_precompute_gradcheck():
    p = random_6d(3, seed=4)
    centre = torch.tensor([5.0, -80.0, 12.0], dtype=DOUBLE)
    inputs = [p[k].clone().requires_grad_() for k in
              ("means", "dir_means", "log_scales", "corr_logits", "opacity_logits")]

    def sliced(means, dir_means, log_scales, corr_logits, opacity_logits):
        s_c, gains, s_dd_inv = precompute(log_scales, corr_logits)
        mu_c, alpha = slice_gaussians(means, dir_means, gains, s_dd_inv, opacity_logits, centre)
        return mu_c, alpha, s_c

    assert torch.autograd.gradcheck(sliced, inputs, eps=1e-6, atol=1e-6)


# ---------------------------------------------------------------- rasterizer ------------------

def scene(n: int, seed: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """n random 3D-looking Gaussians in front of a camera at the origin looking along -A."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.stack([torch.rand(n, generator=gen) * 60 - 30,
                         -(torch.rand(n, generator=gen) * 100 + 150),
                         torch.rand(n, generator=gen) * 40 - 20], dim=-1)
    return {
        "means": means.to(dtype),
        "dir_means": torch.randn(n, 3, generator=gen).to(dtype),
        "log_scales": (torch.rand(n, 6, generator=gen) * 1.5 + 0.3).to(dtype),
        "corr_logits": torch.randn(n, 15, generator=gen).to(dtype),
        "opacity_logits": (torch.randn(n, generator=gen) + 1.0).to(dtype),
        "rgb": torch.rand(n, 3, generator=gen).to(dtype),
        "sh": torch.cat([torch.full((n, 1), 3.0), torch.randn(n, 8, generator=gen) * 0.3],
                        dim=1).to(dtype),
        "specular_sh": torch.zeros(n, 9, dtype=dtype),  # no white light unless a test sets it
    }


CAMERA = Camera(position=(0.0, 0.0, 0.0), focal_point=(0.0, -1.0, 0.0), view_up=(0.0, 0.0, 1.0),
                view_angle=40.0)


def project(s: dict, width: int, height: int, camera: Camera = CAMERA) -> dict:
    world_to_camera, intrinsics, centre = camera_tensors(camera, width, height, torch.device("cpu"),
                                                         s["means"].dtype)
    s_c, gains, s_dd_inv = precompute(s["log_scales"], s["corr_logits"])
    return slice_project(s["means"], s["dir_means"], s_c, gains, s_dd_inv, s["opacity_logits"],
                         s["rgb"], s["sh"], s["specular_sh"], world_to_camera, intrinsics, centre,
                         width, height)


def rasterize(projected: dict, width: int, height: int, tile_size: int = 16,
              background=(0.0, 0.0, 0.0)):
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height, tile_size)
    bg = torch.tensor(background, dtype=projected["means2d"].dtype)
    return blend(projected["means2d"], projected["conics"], projected["colors"],
                 projected["opacities"], projected["depths"], ids, ranges, width, height, bg,
                 tile_size)


def brute_force(projected: dict, width: int, height: int, early_stop: bool = True):
    """Per pixel, every visible Gaussian sorted by depth, blended one at a time (DESIGN.md 6);
    early_stop=False blends on past the transmittance stop (to show that a scene reaches it)."""
    pr = {k: v.detach().double().numpy() for k, v in projected.items()}
    visible = np.nonzero(pr["radii"] > 0)[0]
    order = visible[np.argsort(pr["depths"][visible], kind="stable")]
    rgb = np.zeros((height, width, 3))
    alpha, depth = np.zeros((height, width)), np.zeros((height, width))
    for v in range(height):
        for u in range(width):
            t = 1.0
            for g in order:
                dx, dy = pr["means2d"][g] - (u + 0.5, v + 0.5)
                a, b, c = pr["conics"][g]
                power = -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
                if power > 0:
                    continue
                al = min(0.99, pr["opacities"][g] * math.exp(power))
                if al < 1 / 255:
                    continue
                if early_stop and t * (1 - al) < 1e-4:
                    break
                rgb[v, u] += al * t * pr["colors"][g]
                depth[v, u] += al * t * pr["depths"][g]
                t *= 1 - al
            alpha[v, u] = 1 - t
    depth = np.where(alpha > 0, depth / np.maximum(alpha, 1e-12), 0.0)
    return rgb, alpha, depth


@pytest.mark.parametrize("tile_size", [16, 4])
def test_rasterizer_matches_brute_force(tile_size):
    width, height = 40, 28  # not multiples of 16: partial tiles at the right and bottom
    projected = project(scene(25, seed=5), width, height)
    assert (projected["radii"] > 0).sum() >= 15
    rgb, alpha, depth = rasterize(projected, width, height, tile_size)
    ref_rgb, ref_alpha, ref_depth = brute_force(projected, width, height)
    # float32 blending against float64: errors ~1e-6 per term, 25 terms at most.
    np.testing.assert_allclose(rgb.numpy(), ref_rgb, atol=1e-5)
    np.testing.assert_allclose(alpha.numpy(), ref_alpha, atol=1e-5)
    np.testing.assert_allclose(depth.numpy(), ref_depth, atol=1e-3)  # mm at depths 150..250


def test_opaque_stack_stops_where_brute_force_stops():
    """Four Gaussians on the optical axis, one behind the other, of opacity 0.99, 0.5, 0.99 and
    0.99 at their centres (the coverage factor of their 7-9 px footprints leaves at least 0.998
    of sigmoid(8) and 0.5): near the axis the third would take T from 0.005 to 5e-5, below 1e-4,
    so the pixel stops before it (and the fourth) and keeps T = 0.005."""
    width, height = 41, 29  # odd: the optical axis passes through the centre of pixel (20, 14)
    s = scene(4, seed=0, dtype=DOUBLE)
    s["means"] = torch.tensor([[0.0, -depth, 0.0] for depth in (100.0, 110.0, 120.0, 130.0)],
                              dtype=DOUBLE)
    s["dir_means"] = torch.tensor([[0.0, -1.0, 0.0]] * 4, dtype=DOUBLE)  # opacity factor 1
    s["log_scales"] = torch.tensor([[3.0] * 3 + [0.0] * 3] * 4, dtype=DOUBLE)  # 20 mm: 7-9 px
    s["corr_logits"] = torch.zeros(4, 15, dtype=DOUBLE)
    s["opacity_logits"] = torch.tensor([8.0, 0.0, 8.0, 8.0], dtype=DOUBLE)  # 0.99 once clamped
    s["rgb"] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]],
                            dtype=DOUBLE)
    s["sh"] = torch.zeros(4, 9, dtype=DOUBLE)
    s["sh"][:, 0] = 1.0 / 0.28209479177387814  # shading 1
    projected = project(s, width, height)
    rgb, alpha, depth = rasterize(projected, width, height)
    ref_rgb, ref_alpha, ref_depth = brute_force(projected, width, height)
    # The scene reaches the stop: blending on would add up to 0.99 x 0.005 of coverage.
    assert (brute_force(projected, width, height, early_stop=False)[1] - ref_alpha).max() > 4e-3
    # float64 throughout; the renderer's T = exp(sum log(1 - alpha)) against the product: ~1e-15.
    np.testing.assert_allclose(rgb.numpy(), ref_rgb, atol=1e-10)
    np.testing.assert_allclose(alpha.numpy(), ref_alpha, atol=1e-10)
    np.testing.assert_allclose(depth.numpy(), ref_depth, atol=1e-8)  # mm


def test_image_does_not_depend_on_tile_size():
    projected = project(scene(300, seed=6), 100, 70)
    images = [rasterize(projected, 100, 70, tile_size) for tile_size in (16, 8, 4, 2)]
    for other in images[1:]:
        for a, b in zip(images[0], other):
            assert torch.allclose(a, b, atol=1e-5)


def test_single_gaussian_footprint_matches_the_pinhole_projection():
    """An isotropic 3D Gaussian of sigma s at distance z on the optical axis projects to an
    isotropic 2D Gaussian of variance v = (f s / z)^2 + 0.1 px^2 centred on the image centre, its
    opacity scaled by the coverage factor sqrt(det S / det(S + 0.1 I)) = (v - 0.1) / v."""
    width, height, sigma, distance = 64, 48, 2.0, 200.0
    s = scene(1, seed=0)
    s["means"] = torch.tensor([[0.0, -distance, 0.0]])
    s["log_scales"] = torch.tensor([[math.log(sigma)] * 3 + [0.0] * 3])
    s["corr_logits"] = torch.zeros(1, 15)
    s["dir_means"] = torch.tensor([[0.0, -1.0, 0.0]])  # along the view: opacity factor 1
    s["opacity_logits"] = torch.tensor([0.0])  # 0.5
    rgb, alpha, depth = rasterize(project(s, width, height), width, height)
    focal = (height / 2) / math.tan(math.radians(CAMERA.view_angle) / 2)
    variance = (focal * sigma / distance) ** 2 + BLUR
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    offset2 = (u - width / 2) ** 2 + (v - height / 2) ** 2
    expected = 0.5 * (variance - BLUR) / variance * np.exp(-0.5 * offset2 / variance)
    expected = np.where(expected >= 1 / 255, expected, 0.0)
    np.testing.assert_allclose(alpha.numpy(), expected, atol=1e-5)
    assert depth[height // 2, width // 2].item() == pytest.approx(distance, rel=1e-5)


@pytest.mark.parametrize("sigma_mm", [2.3, 4.5, 11.4])  # 0.5, 1 and 2.5 px at 32 x 32
def test_coverage_does_not_depend_on_the_resolution(sigma_mm):
    """A Gaussian's coverage (alpha summed over the image, in pixels of the smaller image) is
    the same at 32 x 32 and at 64 x 64, from footprints of 0.5 to 2.5 px sigma: the opacity's
    coverage factor undoes what the 0.1 px^2 blur adds. Without it, the 2.3 mm Gaussian would
    cover 1.27x as much at 32 px as at 64 (factor sqrt(det(S + 0.1 I) / det S) 1.4 against 1.1).
    Tolerance 1 %: the cut at alpha < 1/255 drops 1 / (255 peak) of the mass (0.5-0.6 % here,
    different at each size), sums over pixel centres err by about exp(-2 pi^2 sigma^2) < 0.1 %."""
    s = scene(1, seed=0, dtype=DOUBLE)
    s["means"] = torch.tensor([[0.3, -200.0, -0.2]], dtype=DOUBLE)  # off the pixel grid
    s["log_scales"] = torch.tensor([[math.log(sigma_mm)] * 3 + [0.0] * 3], dtype=DOUBLE)
    s["corr_logits"] = torch.zeros(1, 15, dtype=DOUBLE)
    s["dir_means"] = torch.tensor([[0.0, -1.0, 0.0]], dtype=DOUBLE)  # opacity factor 1
    s["opacity_logits"] = torch.tensor([2.0], dtype=DOUBLE)
    coverage = [rasterize(project(s, side, side), side, side)[1].sum().item() / (side / 32) ** 2
                for side in (32, 64)]
    assert coverage[0] == pytest.approx(coverage[1], rel=0.01)


def pinhole(camera: Camera, width: int, height: int):
    """uv(point [3] RAS mm) -> [2] px, differentiable: the pinhole built from the camera's terms
    (not from camera_tensors): x right = forward x view up, y down = forward x right, the focal
    length from the vertical view angle, the principal point at the image centre."""
    position = torch.tensor(camera.position, dtype=DOUBLE)
    forward = torch.nn.functional.normalize(torch.tensor(camera.focal_point, dtype=DOUBLE)
                                            - position, dim=0)
    right = torch.nn.functional.normalize(
        torch.linalg.cross(forward, torch.tensor(camera.view_up, dtype=DOUBLE)), dim=0)
    down = torch.linalg.cross(forward, right)
    focal = (height / 2) / math.tan(math.radians(camera.view_angle) / 2)

    def uv(point: torch.Tensor) -> torch.Tensor:
        offset = point - position
        depth = offset @ forward
        return torch.stack([width / 2 + focal * (offset @ right) / depth,
                            height / 2 + focal * (offset @ down) / depth])

    return uv


def test_off_axis_footprint_is_the_pinhole_jacobian_of_the_covariance():
    """EWA: a Gaussian's 2D covariance is J S J^T + 0.1 px^2, J the Jacobian of the pinhole at its
    mean. Here J comes from autograd through `pinhole`, for a Gaussian well off the optical axis
    (x/z 0.22, y/z 0.16: inside the image, where the renderer does not clamp) with a strongly
    correlated covariance, so the off-axis terms of J (-f x / z^2, -f y / z^2) matter."""
    width, height = 64, 48
    s = scene(1, seed=11, dtype=DOUBLE)  # random log_scales and correlations
    s["means"] = torch.tensor([[-35.0, -160.0, 25.0]], dtype=DOUBLE)
    s["dir_means"] = s["means"] - torch.tensor(CAMERA.position, dtype=DOUBLE)  # mu_c = mu_p
    projected = project(s, width, height)
    uv = pinhole(CAMERA, width, height)
    jacobian = torch.autograd.functional.jacobian(uv, s["means"][0])
    s_c = precompute(s["log_scales"], s["corr_logits"])[0][0]  # the sliced 3D covariance
    covariance = jacobian @ s_c @ jacobian.T + BLUR * torch.eye(2, dtype=DOUBLE)
    inverse = torch.linalg.inv(covariance)
    expected = torch.stack([inverse[0, 0], inverse[0, 1], inverse[1, 1]])
    # The same linearisation in float64, in another order of operations: ~1e-15 relative.
    torch.testing.assert_close(projected["conics"][0], expected, rtol=1e-9, atol=0.0)
    torch.testing.assert_close(projected["means2d"][0], uv(s["means"][0]), rtol=1e-12, atol=0.0)


def test_every_gaussian_is_shaded_along_the_camera_axis():
    """Slicer's headlight is one directional light along the camera's axis, so the shading S is
    evaluated there for every Gaussian of a frame: two Gaussians with the same albedo and
    coefficients, one on the axis and one 17 degrees off it, get the same colour, rgb * S(axis).
    Their own view directions would shade them 1.34x apart (checked, so this test can fail)."""
    s = scene(2, seed=5)
    s["means"] = torch.tensor([[0.0, -200.0, 0.0], [60.0, -200.0, 0.0]])
    s["dir_means"] = torch.tensor([[0.0, -1.0, 0.0], [0.0, -1.0, 0.0]])
    s["rgb"] = torch.tensor([[0.8, 0.6, 0.4], [0.8, 0.6, 0.4]])
    s["sh"] = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5]] * 2)
    colors = project(s, 64, 64)["colors"]
    axis = torch.tensor([[0.0, -1.0, 0.0]])
    expected = s["rgb"][0] * (s["sh"][0] * sh_basis(axis)[0]).sum().clamp_min(0.0)
    torch.testing.assert_close(colors, expected.expand(2, 3), rtol=1e-5, atol=1e-6)
    own = torch.nn.functional.normalize(s["means"][1:], dim=-1)  # from the camera at the origin
    ratio = (s["sh"][1] * sh_basis(axis)[0]).sum() / (s["sh"][1] * sh_basis(own)[0]).sum()
    assert ratio > 1.3


def test_white_specular_light_adds_the_same_to_every_channel():
    """colour = rgb * max(0, S(axis)) + max(0, W(axis)): the specular term is light in white, so
    a red Gaussian's highlight adds to green and blue as much as to red; a negative W adds
    nothing (the clamp), and neither does W = 0 (files from before it)."""
    s = scene(3, seed=5)
    s["rgb"] = torch.tensor([[0.9, 0.1, 0.0]] * 3)
    s["sh"] = torch.zeros(3, 9)
    s["sh"][:, 0] = 0.5 / 0.28209479177387814  # S = 0.5 everywhere
    s["specular_sh"] = torch.zeros(3, 9)
    s["specular_sh"][0, 0] = 0.2 / 0.28209479177387814  # W = 0.2 everywhere
    s["specular_sh"][1, 0] = -0.2 / 0.28209479177387814  # W = -0.2: clamped to 0
    s["specular_sh"][2, 2] = 0.3 / 0.4886025119029199  # W = 0.3 z: 0 along the axis (-A)
    colors = project(s, 64, 64)["colors"]
    torch.testing.assert_close(colors[0], torch.tensor([0.65, 0.25, 0.2]), rtol=0, atol=1e-6)
    torch.testing.assert_close(colors[1], torch.tensor([0.45, 0.05, 0.0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(colors[2], torch.tensor([0.45, 0.05, 0.0]), rtol=0, atol=1e-6)


def test_front_gaussian_is_blended_first():
    width = height = 33  # odd: the optical axis passes through the centre of pixel (16, 16)
    s = scene(2, seed=0)
    s["log_scales"] = torch.tensor([[1.5] * 3 + [0.0] * 3] * 2)
    s["corr_logits"] = torch.zeros(2, 15)
    s["dir_means"] = torch.tensor([[0.0, -1.0, 0.0]] * 2)
    s["opacity_logits"] = torch.tensor([0.0, 0.0])
    s["sh"] = torch.zeros(2, 9)
    s["sh"][:, 0] = 1.0 / 0.28209479177387814  # shading 1
    s["rgb"] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    centre = (height // 2, width // 2)
    for red_depth, blue_depth in ((100.0, 120.0), (120.0, 100.0)):
        s["means"] = torch.tensor([[0.0, -red_depth, 0.0], [0.0, -blue_depth, 0.0]])
        projected = project(s, width, height)
        red, blue = projected["opacities"].tolist()  # at the centre: a bit under 0.5 (coverage)
        # the front colour gets its alpha, the back one its alpha times what the front lets through
        if red_depth < blue_depth:
            expected = (red, 0.0, (1.0 - red) * blue)
        else:
            expected = ((1.0 - blue) * red, 0.0, blue)
        image = rasterize(projected, width, height)[0][centre]
        assert torch.allclose(image, torch.tensor(expected), atol=1e-4)


def test_non_finite_and_behind_camera_gaussians_are_culled():
    width, height = 48, 40
    s = scene(30, seed=7)
    clean = rasterize(project(s, width, height), width, height)
    bad = {k: v.clone() for k, v in s.items()}
    extra = scene(5, seed=8)
    extra["means"][0, 0] = float("nan")
    extra["log_scales"][1, 0] = float("inf")
    extra["corr_logits"][2, 3] = float("nan")
    extra["means"][3] = torch.tensor([0.0, 150.0, 0.0])  # behind the camera
    extra["means"][4] = torch.tensor([0.0, -0.5, 0.0])  # in front, but before the near plane
    bad = {k: torch.cat([bad[k], extra[k]]) for k in s}
    projected = project(bad, width, height)
    assert (projected["radii"][-5:] == 0).all()
    dirty = rasterize(projected, width, height)
    for a, b in zip(clean, dirty):
        assert torch.isfinite(b).all()
        assert torch.equal(a, b)


def test_background_fills_uncovered_pixels():
    width, height = 32, 32
    projected = project(scene(3, seed=9), width, height)
    rgb, alpha, _ = rasterize(projected, width, height, background=(0.2, 0.4, 0.6))
    empty = alpha == 0
    assert empty.any() and (~empty).any()
    assert torch.allclose(rgb[empty], torch.tensor([0.2, 0.4, 0.6]))


def test_render_is_differentiable_end_to_end():
    width, height = 12, 10
    s = scene(4, seed=10, dtype=DOUBLE)
    s["means"][:, 0] *= 0.1  # keep them near the image centre
    s["means"][:, 2] *= 0.1
    s["specular_sh"] = 0.2 * torch.randn(4, 9, generator=torch.Generator().manual_seed(3),
                                         dtype=DOUBLE)
    s["specular_sh"][:, 0] += 0.5  # W > 0: white light that has a gradient
    names = ("means", "dir_means", "log_scales", "corr_logits", "opacity_logits", "rgb", "sh",
             "specular_sh")

    def image(*values):
        rgb, alpha, depth = rasterize(project(dict(zip(names, values)), width, height), width,
                                      height)
        return rgb, alpha

    inputs = [s[k].clone().requires_grad_() for k in names]
    rgb, alpha = image(*inputs)
    (rgb.sum() + alpha.sum()).backward()
    assert alpha.max() > 0.1 and all(x.grad.abs().sum() > 0 for x in inputs)
    # Thresholds (alpha >= 1/255, T >= 1e-4) make the image piecewise smooth; eps = 1e-6 stays
    # clear of them for this scene.
    assert torch.autograd.gradcheck(image, inputs, eps=1e-6, atol=1e-5)
