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


def check_device(device: str | torch.device) -> torch.device:
    """The torch device, checked: RenderFMError if unknown or absent (CUDA on a CPU machine)."""
    try:
        checked = torch.device(device)
    except (RuntimeError, TypeError):
        raise RenderFMError(f"unknown device '{device}'; use cpu or cuda") from None
    if checked.type == "cuda" and not torch.cuda.is_available():
        raise RenderFMError(f"device '{device}' is not available here (no CUDA GPU, or a CPU-only "
                            "torch); use cpu")
    return checked
