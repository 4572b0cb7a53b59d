"""Anatomy-Guided Priming (AGP): one base Gaussian per visible block of the half-resolution grid.

The CT grid is cut into 2x2x2-voxel blocks (an odd last slice, row or column is dropped). A block
gets a Gaussian when the transfer-function opacity of its mean HU (times the gradient-opacity
factor) exceeds 0.01, with the base values of DESIGN.md section 5 in the channels.py layout:
- mu_p: the block centre (RAS mm); mu_d: the unit mean HU gradient where it is at least
  10 HU/mm, else +S;
- rgb: the preset colour of the block's mean HU;
- sh: the opacity-weighted mean of the 8 voxels' headlight shading, ambient + diffuse |n.v| +
  specular |n.v|^p, fitted as scalar degree-2 SH over 48 view directions (least squares);
- specular_sh (the white specular term, channels.py): 0, so AGP renders as DESIGN.md section 5
  has it, with the specular light in sh; fine-tuning (and a network trained with the term) moves
  it into white light. A base fitted to the specular light alone, with sh fitted to ambient +
  diffuse, spreads the preset's power-10 highlight over the sphere (degree 2 has no sharper
  lobe): measured on the sample at 1.5 mm, held-out against dvr at 512 px, AGP's PSNR fell from
  31.72 to 30.75 dB (CT-Bone) and 29.49 to 29.21 dB (CT-Chest-Contrast-Enhanced);
- opacity: alpha = 1 - (1 - a)^(h / 1 mm) over the block's edge h (mm), as a logit;
- scales: sigma = 0.35 h for position, 3 for direction; correlations 0.
Each Gaussian keeps the most frequent non-zero segmentation label of its block (0 if none).
With partial_blocks (a network trained so records it in its config), AGP also keeps the partial
blocks: those whose mean-HU opacity is at most 0.01 but one of whose voxels is over it (thin
vessels, the rims of bone, which the block mean dilutes). Such a block gets the colour of its
opacity-weighted mean HU and the partial-volume opacity a = the mean of its 8 voxels' per-mm
opacity; everything else as above.
prime() gives these base channels, block indices and labels; build.build_gaussians combines them
with a residual (channels.combine) into Gaussians.
"""

import math
from dataclasses import dataclass

import torch

from .channels import NUM_CHANNELS, SLICES
from .segmentation.looks import label_colors
from .sh import fibonacci_sphere, sh_basis
from .transfer import Preset
from .volume import Volume

MIN_OPACITY = 0.01
SIGMA_PER_BLOCK = 0.35
DIRECTION_SCALE = 3.0
STRONG_GRADIENT_HU_PER_MM = 10.0
SHADING_DIRECTIONS = 48


@dataclass(frozen=True)
class Primed:
    """AGP's result: base [N, 49] channels (channels.py layout), index [N, 3] int64 (k, j, i)
    of each Gaussian's block on the half-resolution grid, labels [N] int64 (0 = none)."""

    base: torch.Tensor
    index: torch.Tensor
    labels: torch.Tensor


def blocks(volume: torch.Tensor) -> torch.Tensor:
    """[C, K, J, I] (or [K, J, I]) -> [K//2, J//2, I//2, 8 (, C)]: the voxels of each block."""
    squeeze = volume.dim() == 3
    vol = volume[None] if squeeze else volume
    c, k, j, i = vol.shape
    k2, j2, i2 = k // 2, j // 2, i // 2
    vol = vol[:, : 2 * k2, : 2 * j2, : 2 * i2].reshape(c, k2, 2, j2, 2, i2, 2)
    vol = vol.permute(1, 3, 5, 2, 4, 6, 0).reshape(k2, j2, i2, 8, c)
    return vol[..., 0] if squeeze else vol


def block_edge_mm(ct: Volume) -> float:
    """h: the edge of a 2x2x2 block in mm (geometric mean over the three axes)."""
    return float(2.0 * math.prod(ct.spacing) ** (1.0 / 3.0))


def prime(
    ct: Volume,
    preset: Preset,
    inputs: torch.Tensor,
    gradient: torch.Tensor,
    labels: Volume | None = None,
    keep_labels: set[int] | None = None,
    group_colors: bool = False,
    partial_blocks: bool = False,
) -> Primed:
    """AGP base channels of the visible blocks, with their block indices and labels.

    inputs [6, K, J, I] from inputs.input_channels; gradient [3, K, J, I] HU/mm (RAS);
    keep_labels: when given, only blocks whose label is in the set get a Gaussian;
    group_colors: colour each block with its label's group look (segmentation.looks) where its
    group has one, instead of the preset's colour; partial_blocks: keep the partial blocks too
    (see above).
    """
    h = block_edge_mm(ct)
    hu_voxels, voxel_opacity = blocks(ct.array), blocks(inputs[5])
    hu = hu_voxels.mean(-1)
    grad_blocks = blocks(gradient)
    grad_norm = torch.linalg.vector_norm(grad_blocks, dim=-1).mean(-1)
    opacity = preset.opacity(hu) * preset.gradient_factor(grad_norm)
    keep = opacity > MIN_OPACITY
    partial = ~keep & (voxel_opacity.amax(-1) > MIN_OPACITY) if partial_blocks \
        else torch.zeros_like(keep)
    keep |= partial
    block_labels = _block_labels(labels, hu.shape, hu.device)
    if keep_labels is not None:
        allowed = torch.tensor(sorted(keep_labels), dtype=torch.int64, device=hu.device)
        keep &= torch.isin(block_labels, allowed)
    index = keep.nonzero()  # [N, 3] (k, j, i) of each block
    partial, weights = partial[keep], voxel_opacity[keep]
    weighted_hu = (hu_voxels[keep] * weights).sum(-1) / weights.sum(-1).clamp_min(1e-12)
    opacity = torch.where(partial, weights.mean(-1), opacity[keep])

    base = torch.zeros(len(index), NUM_CHANNELS, dtype=torch.float32, device=hu.device)
    mean_grad = grad_blocks[keep].mean(1)
    strong = torch.linalg.vector_norm(mean_grad, dim=-1, keepdim=True) >= STRONG_GRADIENT_HU_PER_MM
    up = torch.tensor([0.0, 0.0, 1.0], device=hu.device).expand_as(mean_grad)
    base[:, SLICES["dir_means"]] = torch.where(strong, mean_grad, up)
    base[:, SLICES["rgb"]] = _colors(preset, torch.where(partial, weighted_hu, hu[keep]),
                                     block_labels[keep], group_colors)
    base[:, SLICES["sh"]] = _shading_sh(preset, grad_blocks[keep], weights)
    alpha = 1.0 - (1.0 - opacity.clamp(0.0, 0.999)) ** h
    base[:, SLICES["opacity_logits"]] = torch.logit(alpha.clamp(1e-6, 1 - 1e-6))[:, None]
    base[:, SLICES["log_scales"]] = torch.tensor(
        [math.log(SIGMA_PER_BLOCK * h)] * 3 + [math.log(DIRECTION_SCALE)] * 3, device=hu.device
    )
    return Primed(base, index, block_labels[keep])


def _colors(preset: Preset, hu: torch.Tensor, labels: torch.Tensor,
            group_colors: bool) -> torch.Tensor:
    """[N, 3] the preset's colour of each block's HU (priming's), or its label's group look."""
    rgb = preset.rgb(hu)
    if not group_colors:
        return rgb
    looks = label_colors(labels).to(rgb)
    return torch.where(looks.isnan(), rgb, looks)


def gaussian_means(ct: Volume, index: torch.Tensor,
                offsets: torch.Tensor | None = None) -> torch.Tensor:
    """RAS mm [N, 3] of the Gaussians of blocks at (k, j, i) block indices: each block's centre
    (AGP), moved by `offsets` [N, 3] (the offsets channels: voxels along i, j, k) when given."""
    ijk = index.flip(-1).to(torch.float64) * 2.0 + 0.5
    if offsets is not None:
        ijk = ijk + offsets.to(torch.float64)
    matrix = torch.tensor(ct.ijk_to_ras, dtype=torch.float64, device=index.device)
    return (ijk @ matrix[:3, :3].T + matrix[:3, 3]).to(torch.float32)


def _block_labels(labels: Volume | None, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """Most frequent non-zero label of each block [K2, J2, I2] int64 (0 where none)."""
    if labels is None:
        return torch.zeros(shape, dtype=torch.int64, device=device)
    voxels = blocks(labels.array.to(torch.int64))
    counts = (voxels[..., :, None] == voxels[..., None, :]).sum(-1) * (voxels > 0)
    best = counts.argmax(-1, keepdim=True)
    return torch.where(counts.max(-1).values > 0, voxels.gather(-1, best)[..., 0], 0)


def _shading_sh(preset: Preset, gradients: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scalar degree-2 SH [N, 9] of each block's opacity-weighted headlight shading.

    gradients [N, 8, 3] HU/mm per voxel, weights [N, 8] per-voxel opacity.
    """
    directions = fibonacci_sphere(SHADING_DIRECTIONS).to(gradients)
    normals = torch.nn.functional.normalize(gradients, dim=-1)
    shading = preset.shading((normals @ directions.T).abs())  # [N, 8, D]
    weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, torch.ones_like(weights))
    mean = (shading * weights[..., None]).sum(1) / weights.sum(-1, keepdim=True)  # [N, D]
    fit = torch.linalg.pinv(sh_basis(directions))  # [9, D]
    return mean @ fit.T
