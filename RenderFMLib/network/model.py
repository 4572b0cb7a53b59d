"""The Render-FM network: a CT's 6 input channels (inputs.py) in, the 49 per-block channel
residuals (channels.py) out, on the half-resolution grid of AGP's 2x2x2-voxel blocks.

Two architectures behind one interface, chosen by NetworkConfig.kind:
- "local", the model trained on a CPU and shipped: each block's 8 voxels x 6 channels are
  stacked (48 channels on the half-resolution grid, nothing lost), then `depth` 3x3x3
  convolutions of `width` channels with leaky ReLU, so a block sees `depth` blocks on each side.
  Nothing normalises across the volume, so a slab with halo_voxels() more slices on each side
  gives the same output as the whole CT (build.py runs it slab by slab; memory follows the slab).
- "unet", the paper's nnU-Net-style 3D U-Net (instance norm, leaky ReLU, strided convolutions
  down, transposed convolutions up, skips) for training at scale on GPUs; it runs on the whole CT.
The last layer starts at zero, so an untrained network gives exactly AGP. Outputs are bounded
where geometry needs it: log-scale residuals within +-MAX_LOG_SCALE_STEP (scales change by a
factor of at most e^1.5 = 4.5), opacity logits within +-MAX_OPACITY_STEP, position offsets
within +-MAX_OFFSET_VOXELS (a Gaussian stays inside its block). A network whose config has no
offsets (every one trained before they existed) predicts 37 channels and offsets of 0; one whose
config has no specular (every one trained before the white specular term) predicts the channels
before specular_sh and leaves that term at AGP's base. A network whose config has
spacing_input also reads the voxel spacing along each of its axes (a constant channel each, as
log2 of the spacing over SPACING_REFERENCE_MM), so it can tell a 1.5 mm grid from a 4 mm one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
from torch import nn

from ..channels import NUM_CHANNELS, SLICES
from .inputs import NUM_INPUT_CHANNELS

MAX_LOG_SCALE_STEP = 1.5
MAX_OPACITY_STEP = 8.0
MAX_OFFSET_VOXELS = 1.0
OPACITY_INPUT_GAIN = 100.0  # per-mm opacity a -> log(1 + 100 a) / log(101): 0.01 /mm is 0.15
SPACING_REFERENCE_MM = 2.0  # spacing channels: log2(spacing / 2 mm), 0 at 2 mm, +1 at 4 mm
SPACING_CHANNELS = 3
LEAK = 0.01


@dataclass(frozen=True)
class NetworkConfig:
    """kind: "local" or "unet"; width: channels of the first (and, for local, every) hidden
    layer; depth: local: 3x3x3 layers, unet: resolution levels below the block grid; offsets:
    whether it predicts the position offsets (channels.py); specular: whether it predicts the
    white specular term (channels.py; only with offsets, which come before it); partial_blocks:
    whether the AGP under it keeps the partial blocks (priming.py), in training and in use;
    spacing_input: whether it reads the voxel spacing (three more input channels). All four are
    false in configs written before they existed."""

    kind: Literal["local", "unet"] = "local"
    width: int = 32
    depth: int = 3
    offsets: bool = False
    partial_blocks: bool = False
    specular: bool = False
    spacing_input: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("local", "unet"):
            raise ValueError(f"network kind must be local or unet, not {self.kind!r}")
        for name in ("width", "depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
                raise ValueError(f"network {name} must be a whole number in [1, 256], "
                                 f"not {value!r}")
        for name in ("offsets", "partial_blocks", "specular", "spacing_input"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"network {name} must be true or false, "
                                 f"not {getattr(self, name)!r}")
        if self.specular and not self.offsets:
            raise ValueError("a network that predicts the specular term (specular: true) must "
                             "predict the offsets too (offsets: true)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, terms: dict) -> NetworkConfig:
        """ValueError naming unknown or wrong terms."""
        if not isinstance(terms, dict):
            raise ValueError(f"a network config is a JSON object, not {type(terms).__name__}")
        unknown = set(terms) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"unknown network config terms: {', '.join(sorted(unknown))}")
        return cls(**terms)


class RenderFMNetwork(nn.Module):
    """inputs [B, 6, K, J, I] (K, J, I even) and the voxel spacing along K, J, I in mm (needed
    when config.spacing_input) -> residuals [B, 49, K/2, J/2, I/2]."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        body: LocalBody | UNetBody = LocalBody(config) if config.kind == "local" \
            else UNetBody(config)
        self.body = body
        outputs = predicted_channels(config)
        self.head = nn.Conv3d(body.out_channels, outputs, 1)
        with torch.no_grad():
            for parameter in self.head.parameters():
                parameter.zero_()

    def halo_voxels(self) -> int | None:
        """Slices on each side that a slab needs for the same output as the whole CT (even);
        None when only the whole CT gives it (unet: instance norm)."""
        if self.config.kind != "local":
            return None
        return 2 * self.config.depth

    def forward(self, inputs: torch.Tensor,
                spacing_mm: tuple[float, float, float] | None = None) -> torch.Tensor:
        if inputs.dim() != 5 or inputs.shape[1] != NUM_INPUT_CHANNELS \
                or any(side % 2 for side in inputs.shape[2:]):
            raise ValueError(f"network inputs must be [B, {NUM_INPUT_CHANNELS}, K, J, I] with "
                             f"K, J, I even, not {list(inputs.shape)}")
        blocks = stack_blocks(scaled(inputs))
        if self.config.spacing_input:
            blocks = with_spacing(blocks, spacing_mm)
        raw = self.head(self.body(blocks))
        missing = NUM_CHANNELS - raw.shape[1]  # the fields it does not predict: 0
        return bounded(nn.functional.pad(raw, (0, 0, 0, 0, 0, 0, 0, missing)))


def predicted_channels(config: NetworkConfig) -> int:
    """How many of channels.py's channels, from the first, a network of `config` predicts."""
    if config.specular:
        return NUM_CHANNELS
    return SLICES["specular_sh"].start if config.offsets else SLICES["offsets"].start


def block_channels(config: NetworkConfig) -> int:
    """Channels of the stacked blocks the body reads: 8 voxels x 6 inputs, and the spacing."""
    return 8 * NUM_INPUT_CHANNELS + (SPACING_CHANNELS if config.spacing_input else 0)


def scaled(inputs: torch.Tensor) -> torch.Tensor:
    """The input channels brought to comparable ranges: per-mm opacity (channel 5) on a log
    scale, the others (already in [0, 1]) as they are."""
    opacity = torch.log1p(OPACITY_INPUT_GAIN * inputs[:, 5:6].clamp_min(0.0))
    return torch.cat([inputs[:, :5], opacity / math.log1p(OPACITY_INPUT_GAIN)], dim=1)


def with_spacing(blocks: torch.Tensor,
                 spacing_mm: tuple[float, float, float] | None) -> torch.Tensor:
    """The stacked blocks [B, C, ...] and SPACING_CHANNELS constant channels: log2 of the voxel
    spacing along K, J, I over SPACING_REFERENCE_MM."""
    if spacing_mm is None or len(spacing_mm) != SPACING_CHANNELS \
            or not all(math.isfinite(value) and value > 0 for value in spacing_mm):
        raise ValueError(f"a network with spacing_input needs the voxel spacing along K, J, I "
                         f"(3 positive mm), not {spacing_mm!r}")
    levels = torch.tensor([math.log2(value / SPACING_REFERENCE_MM) for value in spacing_mm],
                          dtype=blocks.dtype, device=blocks.device)
    constant = levels[None, :, None, None, None].expand(blocks.shape[0], -1, *blocks.shape[2:])
    return torch.cat([blocks, constant], dim=1)


def stack_blocks(inputs: torch.Tensor) -> torch.Tensor:
    """[B, C, K, J, I] -> [B, 8 C, K/2, J/2, I/2]: each 2x2x2 block's voxels as channels."""
    b, c, k, j, i = inputs.shape
    blocks = inputs.reshape(b, c, k // 2, 2, j // 2, 2, i // 2, 2)
    return blocks.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, 8 * c, k // 2, j // 2, i // 2)


def bounded(raw: torch.Tensor) -> torch.Tensor:
    """Residuals [B, 49, ...] with log-scale, opacity and offset steps bounded by tanh (0 stays
    0)."""
    out = raw.clone()
    for name, limit in (("log_scales", MAX_LOG_SCALE_STEP), ("opacity_logits", MAX_OPACITY_STEP),
                        ("offsets", MAX_OFFSET_VOXELS)):
        out[:, SLICES[name]] = limit * torch.tanh(raw[:, SLICES[name]] / limit)
    return out


class LocalBody(nn.Module):
    """`depth` 3x3x3 convolutions with leaky ReLU over the stacked blocks."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        layers: list[nn.Module] = []
        channels = block_channels(config)
        for _ in range(config.depth):
            layers += [nn.Conv3d(channels, config.width, 3, padding=1), nn.LeakyReLU(LEAK)]
            channels = config.width
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _stage(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    """nnU-Net's stage: two (conv, instance norm, leaky ReLU), the first strided."""
    return nn.Sequential(
        nn.Conv3d(channels_in, channels_out, 3, stride=stride, padding=1),
        nn.InstanceNorm3d(channels_out, affine=True), nn.LeakyReLU(LEAK),
        nn.Conv3d(channels_out, channels_out, 3, padding=1),
        nn.InstanceNorm3d(channels_out, affine=True), nn.LeakyReLU(LEAK))


class UNetBody(nn.Module):
    """A 3D U-Net over the stacked blocks: `depth` levels down (channels doubling to at most
    8 x width), each back up by a transposed convolution and joined with its skip."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        widths = [min(config.width * 2 ** level, 8 * config.width)
                  for level in range(config.depth + 1)]
        self.down = nn.ModuleList([_stage(block_channels(config), widths[0])] + [
            _stage(widths[level - 1], widths[level], stride=2)
            for level in range(1, len(widths))])
        self.up = nn.ModuleList([nn.ConvTranspose3d(widths[level], widths[level - 1], 2, 2)
                                 for level in range(len(widths) - 1, 0, -1)])
        self.merge = nn.ModuleList([_stage(2 * widths[level - 1], widths[level - 1])
                                    for level in range(len(widths) - 1, 0, -1)])
        self.out_channels = widths[0]
        self.multiple = 2 ** config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[2:]
        padding = [pad for side in reversed(shape) for pad in (0, -side % self.multiple)]
        x = nn.functional.pad(x, padding, mode="replicate")
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return x[:, :, :shape[0], :shape[1], :shape[2]]
