"""Which Gaussians can reach a pixel of a view: a conservative test from the parameters alone.

slice_project decides exactly (radius > 0), but only after precompute, the costliest per-Gaussian
stage. A window of a view shows a share of a scan's Gaussians (a median of 38 % for fine-tuning's
128 px windows of the sample at 1.5 mm, CT-Bone), so fine-tuning renders only those that
`may_reach` the window (43 %). The test never drops a Gaussian that slice_project keeps; it keeps
some that slice_project then culls. The CPU kernels' may_reach (cpu/kernels.cpp) is its twin.

The bound, per Gaussian (DESIGN.md sections 4 and 6; s = exp(log_scales), U the unit lower
factor, o the opacity logit):
    t = trace S_pp = s_0^2 + s_1^2 (1 + U_10^2) + s_2^2 (1 + U_20^2 + U_21^2)   mm^2
        >= lambda_max(S_pp) >= lambda_max(S_c)          (conditioning shrinks a covariance)
    q = delta^T S_dd^-1 delta <= Q = ln(255 sigmoid(o)) / 0.35   (else alpha_c < 1/255: culled)
    |K delta| <= sqrt(t q) <= sqrt(t Q) = shift          (the sliced mean stays in that ball)
    T = lambda_max(J J^T) t >= trace(J R S_c R^T J^T), the 2D covariance S before the blur
        (trace(A S A^T) <= lambda_max(A^T A) trace S, and trace S_c <= t); J J^T =
        [[fx^2 (1 + u^2), fx fy u v], [fx fy u v, fy^2 (1 + v^2)]] / z^2 with |u| <= lim_x,
        |v| <= lim_y, and lambda_max grows with each entry's size: at most that of
        [[fx^2 (1 + lim_x^2), fx fy lim_x lim_y], [..., fy^2 (1 + lim_y^2)]] / z_min^2
    drawn opacity = alpha_c sqrt(det S / det(S + 0.1 I)) <= sigmoid(o) max(T / (T + 0.2), 1e-3)
        (each eigenvalue's factor l / (l + 0.1) is concave in l: the product peaks at equal
        halves of the trace; 1e-3 = sqrt(MIN_COVERAGE_RATIO)); with A = ln(255 x that bound),
    radius px <= sqrt(2 A) sqrt(T + 2 0.1 + sqrt(0.1)) + 1
(slice_project's lambda_max = mid + sqrt(max(mid^2 - det, 0.1)) is at most the 2D covariance's
trace, with its 2 x 0.1 px^2 blur, plus sqrt(0.1)), with z_min the nearest depth of the ball and
lim the Jacobian's clamp (FRUSTUM_SLACK). The sliced mean projects inside the box spanned by the
ball's corners; a Gaussian is kept where that box, grown by the radius, meets the image. One whose
ball crosses the near plane is kept; one wholly behind it is not; one with A <= 0 is not.
"""

from __future__ import annotations

import math

import torch

from .slice_project import (
    COVARIANCE_BLUR_PX2,
    FRUSTUM_SLACK,
    MIN_ALPHA,
    MIN_COVERAGE_RATIO,
    NEAR_PLANE_MM,
    OPACITY_LAMBDA,
)

SLACK = 1.01  # on the bound's sizes: float32 rounding of the exact stages' different arithmetic
LOG_SLACK = 1e-5  # on ln(255 sigmoid(o)): the exact test's alpha_c >= 1/255 rounds too
BLUR_BOUND_PX2 = 2.0 * COVARIANCE_BLUR_PX2 + math.sqrt(0.1)  # see the radius bound above


def may_reach(params: dict[str, torch.Tensor], world_to_camera: torch.Tensor,
              intrinsics: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[N] bool: False only for Gaussians that slice_project culls (radius 0) for this camera.

    params: SixDGaussians.params() names (means RAS mm); world_to_camera [4, 4] (OpenCV),
    intrinsics [3, 3] px of a width x height image. No gradients.
    """
    with torch.no_grad():
        log_alpha = torch.clamp(torch.nn.functional.logsigmoid(params["opacity_logits"])
                                - math.log(MIN_ALPHA) + LOG_SLACK, min=0.0)  # ln(255 sigmoid(o))
        spread = _position_variance_bound(params["log_scales"], params["corr_logits"]) * SLACK
        shift = torch.sqrt(spread * log_alpha / OPACITY_LAMBDA)
        cam = params["means"] @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
        return _box_meets_image(cam, shift * SLACK, spread, log_alpha, intrinsics, width, height)


def _position_variance_bound(log_scales: torch.Tensor, corr_logits: torch.Tensor) -> torch.Tensor:
    """[N] trace of S_pp (mm^2), at least its largest eigenvalue."""
    scales2 = torch.exp(2.0 * log_scales[:, :3])
    unit2 = (2.0 * torch.sigmoid(corr_logits[:, :3]) - 1.0) ** 2  # U_10, U_20, U_21
    return (scales2[:, 0] + scales2[:, 1] * (1.0 + unit2[:, 0])
            + scales2[:, 2] * (1.0 + unit2[:, 1] + unit2[:, 2]))


def _box_meets_image(cam: torch.Tensor, shift: torch.Tensor, spread: torch.Tensor,
                     log_alpha: torch.Tensor, intrinsics: torch.Tensor, width: int,
                     height: int) -> torch.Tensor:
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    z_min = cam[:, 2] - shift
    near = z_min <= NEAR_PLANE_MM
    z_lo = torch.where(near, torch.ones_like(z_min), z_min)
    z_hi = cam[:, 2] + shift
    lim_x, lim_y = FRUSTUM_SLACK * 0.5 * width / fx, FRUSTUM_SLACK * 0.5 * height / fy
    sharp_trace = _jacobian_bound(fx, fy, lim_x, lim_y) / (z_lo * z_lo) * spread
    coverage = (sharp_trace / (sharp_trace + 2.0 * COVARIANCE_BLUR_PX2)).clamp_min(
        math.sqrt(MIN_COVERAGE_RATIO))
    log_drawn = torch.clamp(log_alpha + torch.log(coverage), min=0.0)
    radius = torch.sqrt(2.0 * log_drawn) * torch.sqrt(sharp_trace + BLUR_BOUND_PX2)
    radius = radius * SLACK + 1.0
    u_lo, u_hi = _projected_span(cam[:, 0], shift, z_lo, z_hi, fx, cx)
    v_lo, v_hi = _projected_span(cam[:, 1], shift, z_lo, z_hi, fy, cy)
    meets = (u_hi + radius > 0) & (u_lo - radius < width) & (v_hi + radius > 0) & (
        v_lo - radius < height)
    # NaN anywhere compares False (slice_project culls it too); a ball across the near plane
    # has no depth bound: kept
    return (meets | near) & (z_hi > NEAR_PLANE_MM) & (log_drawn > 0)


def _jacobian_bound(fx: torch.Tensor, fy: torch.Tensor, lim_x: torch.Tensor,
                    lim_y: torch.Tensor) -> torch.Tensor:
    """z^2 lambda_max(J J^T) at most, px^2 (the bound above)."""
    p, q = fx * fx * (1.0 + lim_x * lim_x), fy * fy * (1.0 + lim_y * lim_y)
    r = fx * fy * lim_x * lim_y
    half = 0.5 * (p - q)
    return 0.5 * (p + q) + torch.sqrt(half * half + r * r)


def _projected_span(x: torch.Tensor, shift: torch.Tensor, z_lo: torch.Tensor, z_hi: torch.Tensor,
                    focal: torch.Tensor, principal: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(lowest, highest) pixel coordinate of focal x' / z' + principal over x' in [x - shift,
    x + shift], z' in [z_lo, z_hi] (z_lo > 0): the extremes lie at the corners."""
    corners = torch.stack([(x - shift) / z_lo, (x - shift) / z_hi, (x + shift) / z_lo,
                           (x + shift) / z_hi])
    return focal * corners.amin(0) + principal, focal * corners.amax(0) + principal
