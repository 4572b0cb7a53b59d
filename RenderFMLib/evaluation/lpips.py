"""LPIPS (Zhang et al. 2018, the AlexNet variant), from a local .safetensors file only.

RenderFM ships no LPIPS weights and never downloads or unpickles any. Point RENDERFM_LPIPS_WEIGHTS
at a .safetensors file holding, as float32 tensors:

    conv1.weight [64, 3, 11, 11]   conv1.bias [64]       (AlexNet features, ImageNet-trained)
    conv2.weight [192, 64, 5, 5]   conv2.bias [192]
    conv3.weight [384, 192, 3, 3]  conv3.bias [384]
    conv4.weight [256, 384, 3, 3]  conv4.bias [256]
    conv5.weight [256, 256, 3, 3]  conv5.bias [256]
    lin1.weight [1, 64, 1, 1] ... lin5.weight [1, 256, 1, 1]   (LPIPS v0.1 linear heads)

(torchvision's AlexNet `features.{0,3,6,8,10}` and the lpips package's `lin{0..4}.model.1`,
renamed; converting them is up to you). Without the file, lpips_distance() returns None: the
metric is reported as unavailable, never estimated.

The distance: images in [-1, 1] are shifted and scaled per channel (LPIPS's ScalingLayer), passed
through AlexNet's five conv + ReLU stages (3x3 max-pooling before the second and third); at each
stage the features are unit-normalised over channels, their squared difference weighted by the
stage's linear head and averaged over the image; the five values are summed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ModelFileError

WEIGHTS_VARIABLE = "RENDERFM_LPIPS_WEIGHTS"
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_CONVS = {  # name: (out channels, in channels, kernel, stride, padding)
    "conv1": (64, 3, 11, 4, 2),
    "conv2": (192, 64, 5, 1, 2),
    "conv3": (384, 192, 3, 1, 1),
    "conv4": (256, 384, 3, 1, 1),
    "conv5": (256, 256, 3, 1, 1),
}
_POOL_BEFORE = ("conv2", "conv3")  # 3x3 max-pooling, stride 2


def weights_path() -> Path | None:
    """The LPIPS weights file named by RENDERFM_LPIPS_WEIGHTS, or None when it is not set."""
    value = os.environ.get(WEIGHTS_VARIABLE)
    return Path(value) if value else None


@functools.lru_cache(maxsize=4)
def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The checked tensors of an LPIPS .safetensors file; ModelFileError naming what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise ModelFileError(f"LPIPS weights {path} cannot be read: {error}") from None
    expected: dict[str, tuple[int, ...]] = {
        f"{name}.weight": (out, cin, k, k) for name, (out, cin, k, *_) in _CONVS.items()}
    expected |= {f"{name}.bias": (out,) for name, (out, *_) in _CONVS.items()}
    expected |= {f"lin{i}.weight": (1, spec[0], 1, 1)
                 for i, spec in enumerate(_CONVS.values(), start=1)}
    for key, shape in expected.items():
        if key not in tensors or tuple(tensors[key].shape) != shape:
            found = tuple(tensors[key].shape) if key in tensors else "missing"
            raise ModelFileError(f"LPIPS weights {path}: {key} must have shape {shape}, "
                                 f"found {found}")
    return {key: tensors[key].float() for key in expected}


def _features(image: torch.Tensor, weights: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    shift = torch.tensor(_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(_SCALE).view(1, 3, 1, 1)
    x = (image - shift) / scale
    taps = []
    for name, (_, _, _, stride, padding) in _CONVS.items():
        if name in _POOL_BEFORE:
            x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = F.relu(F.conv2d(x, weights[f"{name}.weight"], weights[f"{name}.bias"], stride,
                            padding))
        taps.append(x)
    return taps


def lpips_distance(a: torch.Tensor, b: torch.Tensor,
                   weights: dict[str, torch.Tensor] | None = None) -> float | None:
    """LPIPS between two [1, 3, H, W] images in [-1, 1] (0 when equal, larger is farther), or None
    when no weights are given and RENDERFM_LPIPS_WEIGHTS is not set."""
    if weights is None:
        path = weights_path()
        if path is None:
            return None
        weights = load_weights(path)
    total = torch.zeros(())
    with torch.no_grad():
        for number, (fa, fb) in enumerate(zip(_features(a.float(), weights),
                                              _features(b.float(), weights)), start=1):
            na = fa / (fa.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total += F.conv2d((na - nb).pow(2), weights[f"lin{number}.weight"]).mean()
    return float(total)
