"""Per-group looks: one colour per anatomical group (ivory bone, red vessels...), composed with
the preset into one transfer function: opacity still comes from the preset, colour from the
Gaussian's group where the group has a look, else from the preset."""

import torch

from .classes import GROUPS, group_indices, look_colors


def label_colors(labels: torch.Tensor) -> torch.Tensor:
    """[..., 3] RGB in [0, 1] of each label's group look (labels [...] integers, >= 0), on labels'
    device; NaN where the preset's colour stays (label 0, groups without a look). Sized by the
    labels given, whatever their values."""
    looks = look_colors()
    # One row per group, and a last NaN row that background's group index -1 picks.
    table = torch.full((len(GROUPS) + 1, 3), float("nan"))
    for index, group in enumerate(GROUPS):
        if looks.get(group) is not None:
            table[index] = torch.tensor(looks[group])
    return table.to(labels.device)[group_indices(labels)]
