"""THE layout of the 49 per-Gaussian channels (DESIGN.md section 5, grown by the position offset
that its section 11 foresees and by the white specular term that its section 5 foresees): one
table, one place.

The network predicts 49 residual channels per half-resolution voxel; Anatomy-Guided Priming
(priming.py) provides the base values. A Gaussian's stored parameters are base + residual,
combined as each field says; the activations that turn stored values into geometry happen at
render time (precompute and slicing), so stored values are what an optimizer updates. The
offsets are the exception: they place the Gaussian (priming.gaussian_means) and are not stored.

| channels | field          | combine                    | activation at render time           |
|----------|----------------|----------------------------|-------------------------------------|
| 0-2      | dir_means      | normalize(base + residual) | normalize (mu_d)                    |
| 3-5      | rgb            | clamp(base + residual, 0, 1) | none (albedo in [0, 1])           |
| 6-14     | sh             | base + residual            | S(v) = max(0, sum sh_k Y_k(v))      |
| 15       | opacity_logits | base + residual            | sigmoid                             |
| 16-21    | log_scales     | base + residual            | exp (3 position mm, 3 direction)    |
| 22-36    | corr_logits    | base + residual            | 2 sigmoid - 1 (lower triangle of U) |
| 37-39    | offsets        | base (0) + residual        | mean = block centre + offsets along |
|          |                |                            | the CT's i, j, k axes (voxels)      |
| 40-48    | specular_sh    | base + residual            | W(v) = max(0, sum specular_sh_k     |
|          |                |                            | Y_k(v)), added in white             |

colour(v) = rgb * S(v) + W(v) (render/reference/slice_project.py): S carries the light that the
albedo scales, W light in white, as Slicer's ray cast and dvr add the specular light. DESIGN.md
section 5 draws rgb * S alone, with the specular light in S, so a highlight takes the Gaussian's
colour; it names this second scalar degree-2 term as the next step "if highlights matter".
AGP's W is 0 (priming.py: AGP renders as DESIGN.md has it); fine-tuning moves light into it.
Measured on the sample (CT-Chest-Contrast-Enhanced at 1.5 mm, 300 s of fine-tuning from AGP,
held-out views against dvr at 512 px; the harder close-up / the median view, dB): rgb * S alone
33.52 / 40.52; the same Gaussians against targets whose highlights take the albedo's colour
34.27 / 41.06 (what the colour of the highlights costs); with W, against the real targets,
33.70 / 40.66 and, with seed 1, 33.49 / 40.45 (rgb * S alone: 33.47 / 40.23).

AGP's offsets are 0 (the block centre, DESIGN.md section 5); the network bounds its own to
within one voxel (network/model.py), so a Gaussian stays inside its 2x2x2 block. Model files and
networks from before specular_sh have none: 0 (no white light), so they render as they did.
"""

from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class Field:
    name: str
    start: int
    stop: int
    combine: Literal["normalize", "clamp01", "add"]


FIELDS = (
    Field("dir_means", 0, 3, "normalize"),
    Field("rgb", 3, 6, "clamp01"),
    Field("sh", 6, 15, "add"),
    Field("opacity_logits", 15, 16, "add"),
    Field("log_scales", 16, 22, "add"),
    Field("corr_logits", 22, 37, "add"),
    Field("offsets", 37, 40, "add"),
    Field("specular_sh", 40, 49, "add"),
)
NUM_CHANNELS = FIELDS[-1].stop
SLICES = {field.name: slice(field.start, field.stop) for field in FIELDS}
"""Each field's channels, by name: base[:, SLICES["rgb"]]."""
STORED_FIELDS = tuple(field for field in FIELDS if field.name != "offsets")
"""The fields a SixDGaussians stores as they are (the offsets become its means)."""


def combine(base: torch.Tensor, residual: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-field values from base [N, 49] (+ residual [N, 49]); opacity_logits is [N]; offsets
    [N, 3] (voxels) are for priming.gaussian_means. Each field is its own contiguous tensor, not
    a strided view into the table: float32 reductions follow the memory layout, so a model saved
    and loaded renders the same bit for bit only if the fields were contiguous when it was
    prepared too."""
    if base.shape[-1] != NUM_CHANNELS or (residual is not None and residual.shape != base.shape):
        raise ValueError(f"expected [N, {NUM_CHANNELS}] channels, got {tuple(base.shape)}")
    values = base if residual is None else base + residual
    params = {}
    for field in FIELDS:
        value = values[:, field.start:field.stop]
        if field.combine == "normalize":
            value = torch.nn.functional.normalize(value, dim=-1)
        elif field.combine == "clamp01":
            value = value.clamp(0.0, 1.0)
        value = value.squeeze(-1) if field.stop - field.start == 1 else value
        params[field.name] = value.contiguous()
    return params
