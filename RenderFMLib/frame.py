"""What renderers give and front ends take: a Frame, the image size limit, the progress callback
type and the torch device check. Shared by api.py, groundtruth/ and optimize/ so that none of them
imports the facade (api.py re-exports these)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import RenderFMError
from .files import write_atomic

MAX_IMAGE_SIDE = 8192

Progress = Callable[[float, str], None]
"""progress(fraction in [0, 1], message): called as long work goes on."""


def silent(fraction: float, message: str) -> None:
    """The default progress callback: ignores (fraction in [0, 1], message)."""


@dataclass
class Frame:
    """A rendered image: rgb [H, W, 3] in [0, 1] (background included), alpha [H, W] coverage,
    depth [H, W] expected depth in mm along the optical axis (0 where alpha is 0)."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor

    def to_uint8(self) -> np.ndarray:
        """RGB [H, W, 3] uint8."""
        return (self.rgb.detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()

    def save_png(self, path: str | Path) -> None:
        """Write the RGB image as PNG, whole or not at all (files.write_atomic)."""
        from PIL import Image

        image = Image.fromarray(self.to_uint8())
        write_atomic(path, lambda partial: image.save(partial, "PNG"))


DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The torch device types RenderFM computes on (mps: Apple GPUs), where this torch has them."""


def check_device(device: str | torch.device) -> torch.device:
    """The torch device, checked: RenderFMError if unknown, of a type RenderFM does not compute
    on (meta, xpu...) or absent here (CUDA on a CPU machine, a GPU index past the last)."""
    try:
        checked = torch.device(device)
    except (RuntimeError, TypeError):
        raise RenderFMError(f"unknown device '{device}'; use cpu or cuda") from None
    if checked.type not in DEVICE_TYPES:
        raise RenderFMError(f"device '{device}' is not supported; use cpu, cuda or mps")
    if (problem := _absent(checked)) is not None:
        raise RenderFMError(f"device '{device}' is not available here ({problem}); use cpu")
    return checked


def _absent(device: torch.device) -> str | None:
    """Why this machine and torch cannot compute on device (None: they can)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return "no CUDA GPU, or a CPU-only torch"
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "no Apple GPU, or a torch built without MPS"
    if device.type == "mps" and (device.index or 0) > 0:
        return "one Apple GPU, mps:0"
    return None
