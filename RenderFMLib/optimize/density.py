"""Density control for fine-tuning: split Gaussians that are too coarse, prune faded ones.

One Gaussian per 2x2x2 block cannot draw a cortical rim or a thin vessel. The Gaussians the
optimiser pushes hardest (the mean norm of their mean's gradient over the last interval, 3DGS's
signal, here in RAS mm) are split into two: each child takes a sample of the parent's position
marginal N(mu_p, S_pp) as its mean and the parent's position scales divided by SPLIT_SHRINK, and
keeps every other value (direction, colour, shading, opacity, correlations) and the parent's
segmentation label, so groups still hide and show. Gaussians whose opacity fell below
PRUNE_OPACITY are removed. The count never exceeds `cap`.

Adam's moment estimates follow the surgery: kept Gaussians keep theirs, children start at zero.
"""

from __future__ import annotations

import math

import torch

from ..render.reference.precompute import cholesky_factor

SPLIT_SHRINK = 1.6
PRUNE_OPACITY = 0.005


def split_children(params: dict[str, torch.Tensor], index: torch.Tensor,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Two children per parent at index [M] (2M rows, the children of parent m at m and M + m)."""
    parents = {name: value[index] for name, value in params.items()}
    # S_pp = L_pp L_pp^T: the position block of the Cholesky-style factor (DESIGN.md section 4)
    factor = cholesky_factor(parents["log_scales"], parents["corr_logits"])[:, :3, :3]
    noise = torch.randn(2, len(index), 3, 1, generator=generator, dtype=factor.dtype)
    children = {name: torch.cat([value, value]) for name, value in parents.items()}
    children["means"] = torch.cat([parents["means"] + (factor @ noise[i].to(factor)).squeeze(-1)
                                   for i in range(2)])
    children["log_scales"] = children["log_scales"].clone()
    children["log_scales"][:, :3] -= math.log(SPLIT_SHRINK)
    return children


def choose_splits(gradient_norm: torch.Tensor, log_scales: torch.Tensor, floor_mm: float,
                  room: int) -> torch.Tensor:
    """Indices of the Gaussians to split: the `room` with the largest mean position-gradient
    norm among those pushed at all whose largest position scale stays at or above floor_mm
    after shrinking."""
    largest = torch.exp(log_scales[:, :3].max(-1).values)
    eligible = (gradient_norm > 0) & (largest / SPLIT_SHRINK >= floor_mm)
    candidates = eligible.nonzero().squeeze(-1)
    if len(candidates) > room:
        candidates = candidates[gradient_norm[candidates].topk(max(room, 0)).indices]
    return candidates


def densify(params: dict[str, torch.Tensor], labels: torch.Tensor, optimizer: torch.optim.Adam,
            split: torch.Tensor, generator: torch.Generator | None = None
            ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Split the Gaussians at `split`, then prune faded ones; returns (new leaf params, labels).

    params are the optimizer's leaf tensors (one param group per name, in params' order); their
    Adam state is carried over row by row (zero for children).
    """
    with torch.no_grad():
        keep = torch.sigmoid(params["opacity_logits"]) >= PRUNE_OPACITY
        keep[split] = False  # parents are replaced by their children
        children = split_children({k: v.detach() for k, v in params.items()}, split, generator)
        new_params = {}
        for group, (name, value) in zip(optimizer.param_groups, params.items()):
            fresh = torch.cat([value.detach()[keep], children[name]]).requires_grad_(True)
            _carry_state(optimizer, value, fresh, keep, len(children[name]))
            group["params"] = [fresh]
            new_params[name] = fresh
        new_labels = torch.cat([labels[keep], labels[split].repeat(2)])
    return new_params, new_labels


def _carry_state(optimizer: torch.optim.Adam, old: torch.Tensor, new: torch.Tensor,
                 keep: torch.Tensor, added: int) -> None:
    state = optimizer.state.pop(old, None)
    if not state:
        return
    for key in ("exp_avg", "exp_avg_sq"):
        moment = state[key]
        state[key] = torch.cat([moment[keep], moment.new_zeros((added, *moment.shape[1:]))])
    optimizer.state[new] = state
