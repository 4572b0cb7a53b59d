"""Clip sliced 3D Gaussians at the faces of a crop box, as Slicer's ROI clips the ray cast volume.

Cutting at the Gaussian centres leaves a face as ragged as the blocks (6 mm on a 3 mm CT) and
draws each kept Gaussian whole, past the face. Here a Gaussian (mean mu RAS mm, covariance S mm^2,
the view-independent S_c of DESIGN.md section 4) that a face plane n . x <= b cuts is replaced by
the Gaussian with the moments of its part inside (the truncated normal along n):
    s^2 = n^T S n, beta = (b - n . mu) / s, P = Phi(beta), lam = phi(beta) / P
    mu' = mu - lam S n / s,  v' = s^2 (1 - beta lam - lam^2),  S' = S - (1 - v'/s^2) S n n^T S / s^2
and its opacity keeps the absorption of that part as seen from the camera: a splat's peak
optical depth scales with its mass over its projected area, so with d the viewing direction,
    r = P sqrt(det S_perp / det S'_perp),  det S_perp = det S d^T S^-1 d,
    alpha' = 1 - (1 - alpha)^r
(r = P looking along n, about 0.83 P side-on at a cut through the centre). The six faces are
applied in turn. A Gaussian with less than Phi(-BETA_LIMIT) = 0.02 % of its mass inside any face
is dropped; one with less than that outside every face is left exactly as it was.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BETA_LIMIT = 3.5
"""|beta| beyond which a face leaves a Gaussian whole (beta > 3.5: 99.98 % inside) or drops it."""
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def clip_to_planes(means: torch.Tensor, covariances: torch.Tensor,
                   opacity_logits: torch.Tensor, normals: torch.Tensor, offsets: torch.Tensor,
                   camera_centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor, torch.Tensor]:
    """(kept [N] bool, means [M, 3], covariances [M, 3, 3], opacity_logits [M]) of the M kept
    Gaussians, those cut by a face replaced by their clipped moments (module doc); the input
    tensors themselves when the box holds every Gaussian whole.

    means [N, 3] RAS mm; covariances [N, 3, 3] mm^2; opacity_logits [N]; normals [F, 3] unit,
    pointing out; offsets [F] mm (inside: normal . x <= offset); camera_centre [3] RAS mm.
    Differentiable in means, covariances and opacity_logits.
    """
    betas = _betas(means, covariances, normals, offsets)  # [N, F]
    kept = (betas >= -BETA_LIMIT).all(dim=1)
    cut = kept & (betas < BETA_LIMIT).any(dim=1)
    if not bool(cut.any()):
        if bool(kept.all()):
            return kept, means, covariances, opacity_logits  # the box holds all of them whole
        return kept, means[kept], covariances[kept], opacity_logits[kept]
    mu, cov = means[cut], covariances[cut]
    view = F.normalize(mu - camera_centre, dim=-1)
    before = _perpendicular_det(cov, view)
    log_mass = torch.zeros_like(mu[:, 0])
    for normal, offset in zip(normals, offsets):
        mu, cov, log_part = _truncate(mu, cov, normal, offset)
        log_mass = log_mass + log_part
    ratio = torch.exp(log_mass) * torch.sqrt(before / _perpendicular_det(cov, view))
    logits = opacity_logits.clone()
    logits[cut] = _scaled_logit(opacity_logits[cut], ratio.clamp(max=1.0))
    new_means, new_cov = means.clone(), covariances.clone()
    new_means[cut], new_cov[cut] = mu, cov
    return kept, new_means[kept], new_cov[kept], logits[kept]


def _betas(means: torch.Tensor, covariances: torch.Tensor, normals: torch.Tensor,
           offsets: torch.Tensor) -> torch.Tensor:
    """[N, F] signed distances of the means inside each face, in standard deviations along its
    normal."""
    spread = torch.einsum("fi,nij,fj->nf", normals, covariances, normals).clamp_min(1e-12)
    return (offsets - means @ normals.T) / spread.sqrt()


def _truncate(mu: torch.Tensor, cov: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, covariance, log of the mass kept) of each Gaussian cut by normal . x <= offset,
    moment-matched (module doc); a face far outside leaves it as it was."""
    along = cov @ normal  # S n [M, 3]
    variance = (along @ normal).clamp_min(1e-12)  # s^2
    sigma = variance.sqrt()
    beta = ((offset - mu @ normal) / sigma).clamp(-BETA_LIMIT, BETA_LIMIT)
    log_mass = torch.special.log_ndtr(beta)
    mills = torch.exp(-0.5 * beta ** 2 - HALF_LOG_2PI - log_mass)  # phi(beta) / Phi(beta)
    shrink = (beta * mills + mills ** 2).clamp(0.0, 1.0)  # 1 - v' / s^2
    far = beta >= BETA_LIMIT
    mills, shrink = torch.where(far, 0.0, mills), torch.where(far, 0.0, shrink)
    log_mass = torch.where(far, 0.0, log_mass)
    mu = mu - (mills / sigma)[:, None] * along
    cov = cov - (shrink / variance)[:, None, None] * along[:, :, None] * along[:, None, :]
    return mu, cov, log_mass


def _perpendicular_det(cov: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """det of each covariance's restriction to the plane across the view: det S * d^T S^-1 d."""
    solved = torch.linalg.solve(cov, view.unsqueeze(-1)).squeeze(-1)
    return torch.linalg.det(cov) * (view * solved).sum(-1)


def _scaled_logit(logits: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """The logit of 1 - (1 - alpha)^ratio, alpha = sigmoid(logits): ratio times the optical
    depth."""
    log_clear = ratio * F.logsigmoid(-logits)  # log(1 - alpha')
    alpha = -torch.expm1(log_clear)
    return torch.log(alpha.clamp_min(1e-12)) - log_clear
