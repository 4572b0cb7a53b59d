"""Per-group looks: one colour per anatomical group (ivory bone, red vessels...), composed with
the preset into one transfer function: opacity still comes from the preset, colour from the
Gaussian's group where the group has a look, else from the preset."""

import torch

from .classes import GROUPS, group_lookup, look_colors


def label_colors(max_label: int) -> torch.Tensor:
    """[max_label + 1, 3] RGB in [0, 1] per label; NaN rows keep the preset's colour (label 0,
    groups without a look)."""
    looks = look_colors()
    table = torch.full((len(GROUPS), 3), float("nan"))
    for index, group in enumerate(GROUPS):
        if looks.get(group) is not None:
            table[index] = torch.tensor(looks[group])
    groups = group_lookup(max_label)
    colors = torch.full((max_label + 1, 3), float("nan"))
    labelled = groups >= 0
    colors[labelled] = table[groups[labelled]]
    return colors
