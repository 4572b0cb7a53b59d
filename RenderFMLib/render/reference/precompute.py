"""Stage 1, once per model: the view-independent parts of slicing 6D Gaussians.

The 6x6 covariance over (position p, direction d) is Sigma = L L^T with L = diag(s) U, s = exp of
the six log-scales and U unit lower triangular holding 2 sigmoid(c) - 1 of the 15 correlation
logits, row-major ((1,0), (2,0), (2,1), (3,0), ... (5,4)); DESIGN.md section 4. Slicing at a
view direction needs, per Gaussian:

    S_c      = S_pp - S_pd S_dd^-1 S_dp     [3, 3] mm^2, the sliced 3D covariance (view independent)
    K        = S_pd S_dd^-1                 [3, 3] mm, moves the mean with the view direction
    S_dd_inv = S_dd^-1                      [3, 3], weighs the opacity's view dependence

`precompute` uses the block form (no inverse of a possibly ill-conditioned S_dd);
`precompute_direct` is the textbook form, kept as its independent check.
"""

import torch

_ROWS, _COLS = torch.tril_indices(6, 6, offset=-1)


def cholesky_factor(log_scales: torch.Tensor, corr_logits: torch.Tensor) -> torch.Tensor:
    """L [N, 6, 6] from log-scales [N, 6] and correlation logits [N, 15]."""
    lower = torch.zeros(log_scales.shape[0], 6, 6, dtype=log_scales.dtype,
                        device=log_scales.device)
    lower[:, _ROWS, _COLS] = 2.0 * torch.sigmoid(corr_logits) - 1.0
    unit = lower + torch.eye(6, dtype=log_scales.dtype, device=log_scales.device)
    return torch.exp(log_scales).unsqueeze(-1) * unit


def covariance(log_scales: torch.Tensor, corr_logits: torch.Tensor) -> torch.Tensor:
    """Sigma [N, 6, 6] (position first, then direction)."""
    factor = cholesky_factor(log_scales, corr_logits)
    return factor @ factor.transpose(-1, -2)


def precompute(
    log_scales: torch.Tensor, corr_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S_c, K, S_dd_inv), each [N, 3, 3], in the block form of DESIGN.md section 4."""
    factor = cholesky_factor(log_scales, corr_logits)
    a_pp, a_dp, b = factor[:, :3, :3], factor[:, 3:, :3], factor[:, 3:, 3:]
    eye = torch.eye(3, dtype=factor.dtype, device=factor.device)
    m = torch.linalg.solve_triangular(b, a_dp, upper=False)  # B^-1 A_dp
    b_inv = torch.linalg.solve_triangular(b, eye.expand_as(b), upper=False)
    inner_inv = torch.linalg.inv(eye + m @ m.transpose(-1, -2))  # (I + M M^T)^-1, eigenvalues >= 1
    s_c = a_pp @ torch.linalg.inv(eye + m.transpose(-1, -2) @ m) @ a_pp.transpose(-1, -2)
    gain = a_pp @ m.transpose(-1, -2) @ inner_inv @ b_inv
    s_dd_inv = b_inv.transpose(-1, -2) @ inner_inv @ b_inv
    return s_c, gain, s_dd_inv


def precompute_backward(log_scales: torch.Tensor, corr_logits: torch.Tensor,
                        grads: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """dL/d (log_scales, corr_logits) from dL/d precompute's (S_c, K, S_dd_inv), by autograd
    through `precompute`: the twin of the CUDA and CPU kernels' precompute_bwd."""
    with torch.enable_grad():
        inputs = [log_scales.detach().requires_grad_(), corr_logits.detach().requires_grad_()]
        return torch.autograd.grad(precompute(*inputs), inputs, grads)


def precompute_direct(
    log_scales: torch.Tensor, corr_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S_c, K, S_dd_inv) from the blocks of Sigma directly; the check of `precompute`."""
    sigma = covariance(log_scales, corr_logits)
    s_pp, s_pd, s_dd = sigma[:, :3, :3], sigma[:, :3, 3:], sigma[:, 3:, 3:]
    s_dd_inv = torch.linalg.inv(s_dd)
    gain = s_pd @ s_dd_inv
    return s_pp - gain @ s_pd.transpose(-1, -2), gain, s_dd_inv
