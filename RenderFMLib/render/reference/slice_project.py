"""Stage 2, per frame and per Gaussian: slice the 6D Gaussians at the view, project them (EWA).

Slicing (DESIGN.md section 4), for a camera centre c in RAS mm:
    d = normalize(mu_p - c), delta = d - normalize(mu_d)
    mu_c = mu_p + K delta,   alpha_c = sigmoid(o) * exp(-0.35 delta^T S_dd^-1 delta)
Projection (DESIGN.md section 6): the EWA Jacobian of the pinhole at mu_c maps S_c to a 2D
covariance S in pixels^2, blurred to S + 0.1 I (about a one-pixel box filter, variance 1/12); the
opacity is scaled by sqrt(det S / det(S + 0.1 I)), so the blur keeps each Gaussian's coverage (its
opacity integrated over the image) instead of inflating it (Mip-Splatting's 2D filter). A
Gaussian smaller than a pixel then draws as faint as it would averaged over the pixel, and one set
of Gaussians looks the same at 256 and at 512 px. DESIGN.md section 6 adds 0.3 px^2 without the
factor (3DGS's dilation); measured on the sample (CT-Chest-Contrast-Enhanced at 1.5 mm, 300 s of
fine-tuning), held-out orbit views against dvr, foreground SSIM at 256 px: 0.886-0.896 with
that, 0.914-0.917 with 0.3 and the factor, 0.948-0.952 with 0.1 and the factor (at 512 px
0.920-0.925, 0.927-0.929, 0.933-0.941).
Shading: colour = rgb * max(0, S(a)) + max(0, W(a)) (W: the white specular term, channels.py)
with a the camera's viewing axis (RAS), the same for every Gaussian of the frame, not DESIGN.md
section 4's v = normalize(mu_c - c). Slicer's headlight (and
dvr's) is one directional light along the axis, so a voxel's shading depends on the camera's
direction, not on where the voxel falls in the image; with each Gaussian's own direction, one
seen 15 degrees off the axis is shaded as if lit 15 degrees askew, and no fit can match every
view. Measured on the sample (CT-Chest-Contrast-Enhanced at 1.5 mm, 300 s of fine-tuning, held-out
views against dvr at 512 px): the harder close-up 28.0 -> 33.5 dB (it had stayed at 28-29 dB with
splitting, 1 mm Gaussians or 3,409 steps on a GPU), the median view 39.0 -> 40.5 dB.
Gaussians behind the near plane, with non-finite values, a degenerate footprint or a drawn
opacity < 1/255 get radius 0 (culled).
"""

import torch

from ...sh import sh_basis

OPACITY_LAMBDA = 0.35
NEAR_PLANE_MM = 1.0
COVARIANCE_BLUR_PX2 = 0.1
MIN_ALPHA = 1.0 / 255.0
MIN_COVERAGE_RATIO = 1e-6  # det S / det(S + 0.1 I) floor: a finite gradient edge-on
FRUSTUM_SLACK = 1.3  # clamp x/z, y/z to 1.3 x the half field of view when forming the Jacobian


def slice_gaussians(
    means: torch.Tensor,
    dir_means: torch.Tensor,
    gains: torch.Tensor,
    s_dd_inv: torch.Tensor,
    opacity_logits: torch.Tensor,
    camera_centre: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Condition the 6D Gaussians on the view direction from `camera_centre` [3] (RAS mm).

    means [N, 3] mu_p RAS mm, dir_means [N, 3] mu_d (normalized here), gains [N, 3, 3] K,
    s_dd_inv [N, 3, 3], opacity_logits [N]. Returns (mu_c [N, 3] RAS mm, alpha_c [N]).
    """
    view_dirs = torch.nn.functional.normalize(means - camera_centre, dim=-1)
    delta = view_dirs - torch.nn.functional.normalize(dir_means, dim=-1)
    sliced_means = means + (gains @ delta.unsqueeze(-1)).squeeze(-1)
    quad = (delta.unsqueeze(-2) @ s_dd_inv @ delta.unsqueeze(-1)).reshape(-1)
    return sliced_means, torch.sigmoid(opacity_logits) * torch.exp(-OPACITY_LAMBDA * quad)


def slice_project(
    means: torch.Tensor,
    dir_means: torch.Tensor,
    s_c: torch.Tensor,
    gains: torch.Tensor,
    s_dd_inv: torch.Tensor,
    opacity_logits: torch.Tensor,
    rgb: torch.Tensor,
    sh: torch.Tensor,
    specular_sh: torch.Tensor,
    world_to_camera: torch.Tensor,
    intrinsics: torch.Tensor,
    camera_centre: torch.Tensor,
    width: int,
    height: int,
) -> dict[str, torch.Tensor]:
    """Slice and project N Gaussians for one camera.

    Inputs as in `slice_gaussians`, plus s_c [N, 3, 3] mm^2, rgb [N, 3] albedo in [0, 1],
    sh [N, 9] scalar shading coefficients of the albedo, specular_sh [N, 9] those of the white
    light, world_to_camera [4, 4] (OpenCV), intrinsics [3, 3] px.
    Returns per Gaussian: means2d [N, 2] px (pixel (u, v) has its centre at u + 0.5, v + 0.5),
    conics [N, 3] (a, b, c of the inverse 2D covariance), depths [N] mm along the optical axis,
    radii [N] int px (0 = culled), opacities [N] alpha_c times the coverage factor, colors [N, 3].
    """
    sliced, alpha = slice_gaussians(means, dir_means, gains, s_dd_inv, opacity_logits,
                                    camera_centre)
    rotation, translation = world_to_camera[:3, :3], world_to_camera[:3, 3]
    cam = sliced @ rotation.T + translation
    depth = cam[:, 2]
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    safe_depth = torch.where(depth > NEAR_PLANE_MM, depth, torch.ones_like(depth))
    means2d = torch.stack([fx * cam[:, 0] / safe_depth + cx, fy * cam[:, 1] / safe_depth + cy], -1)
    cov2d = _ewa_covariance(cam, safe_depth, s_c, rotation, intrinsics, width, height)
    sharp_a, b, sharp_c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    a, c = sharp_a + COVARIANCE_BLUR_PX2, sharp_c + COVARIANCE_BLUR_PX2
    det = a * c - b * b
    safe_det = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / safe_det, -b / safe_det, a / safe_det], dim=-1)
    coverage = ((sharp_a * sharp_c - b * b) / safe_det).clamp_min(MIN_COVERAGE_RATIO)
    alpha = alpha * torch.sqrt(coverage)

    axis = torch.nn.functional.normalize(rotation[2], dim=0)  # the camera's viewing axis, RAS
    basis = sh_basis(axis[None])
    shading = (sh * basis).sum(-1).clamp_min(0.0)
    white = (specular_sh * basis).sum(-1).clamp_min(0.0)
    colors = rgb * shading.unsqueeze(-1) + white.unsqueeze(-1)

    radii = _radii(a, c, det, alpha.detach())
    finite = torch.isfinite(torch.cat([means2d, conics, colors, alpha[:, None], depth[:, None]],
                                      -1))
    visible = (
        finite.all(-1)
        & (depth > NEAR_PLANE_MM)
        & (det > 0)
        & (alpha >= MIN_ALPHA)
        & (means2d[:, 0] + radii > 0)
        & (means2d[:, 0] - radii < width)
        & (means2d[:, 1] + radii > 0)
        & (means2d[:, 1] - radii < height)
    )
    radii = torch.where(visible.detach(), radii, torch.zeros_like(radii))
    return {"means2d": means2d, "conics": conics, "depths": depth, "radii": radii,
            "opacities": alpha, "colors": colors}


def _ewa_covariance(cam, depth, s_c, rotation, intrinsics, width, height) -> torch.Tensor:
    """2D covariance [N, 2, 2] px^2 of the projected 3D covariances (before the blur)."""
    fx, fy = intrinsics[0, 0], intrinsics[1, 1]
    lim_x = FRUSTUM_SLACK * 0.5 * width / fx
    lim_y = FRUSTUM_SLACK * 0.5 * height / fy
    tx = (cam[:, 0] / depth).clamp(-lim_x, lim_x) * depth
    ty = (cam[:, 1] / depth).clamp(-lim_y, lim_y) * depth
    zero = torch.zeros_like(depth)
    jacobian = torch.stack([
        torch.stack([fx / depth, zero, -fx * tx / depth**2], -1),
        torch.stack([zero, fy / depth, -fy * ty / depth**2], -1),
    ], dim=-2)
    transform = jacobian @ rotation
    return transform @ s_c @ transform.transpose(-1, -2)


def _radii(a: torch.Tensor, c: torch.Tensor, det: torch.Tensor,
           alpha: torch.Tensor) -> torch.Tensor:
    """Opacity-aware radius [N] int px: beyond it alpha_c * exp(-r^2 / 2 lambda_max) < 1/255."""
    with torch.no_grad():
        mid = 0.5 * (a + c)
        lambda_max = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.1))
        extent = torch.sqrt(2.0 * torch.log(torch.clamp(alpha / MIN_ALPHA, min=1.0)))
        radius = torch.ceil(extent * torch.sqrt(lambda_max.clamp_min(0.0)))
        radius = torch.nan_to_num(radius, nan=0.0, posinf=0.0, neginf=0.0)
        return radius.clamp(0, 1 << 20).to(torch.int32)
