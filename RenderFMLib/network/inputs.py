"""The 6-channel input volume of the network (Render-FM): HU, foreground mask, RGBA of the preset.

| channel | meaning                                                        |
|---------|----------------------------------------------------------------|
| 0       | normalized HU: (clip(HU, -1024, 3071) + 1024) / 4095, in [0, 1] |
| 1       | segmentation foreground (label > 0), 0 without a segmentation  |
| 2-4     | transfer-function colour of the voxel's HU, RGB in [0, 1]      |
| 5       | transfer-function opacity per mm x gradient-opacity factor     |
"""

import numpy as np
import torch

from ..transfer import Preset
from ..volume import Volume

HU_RANGE = (-1024.0, 3071.0)
NUM_INPUT_CHANNELS = 6


def normalize_hu(hu: torch.Tensor) -> torch.Tensor:
    """HU -> [0, 1] over HU_RANGE (clipped)."""
    low, high = HU_RANGE
    return (hu.clamp(low, high) - low) / (high - low)


def gradient_ras(volume: Volume) -> torch.Tensor:
    """HU gradient [3, K, J, I] in HU per mm along R, A, S (central differences inside)."""
    hu = volume.array
    per_index = torch.stack(
        [torch.gradient(hu, dim=axis)[0] for axis in (2, 1, 0)]  # d/di, d/dj, d/dk
    )
    # HU(x) = f(A^-1 (x - o)), so grad_x = A^-T grad_ijk with A the 3x3 of ijk_to_ras.
    to_ras = torch.from_numpy(np.linalg.inv(volume.ijk_to_ras[:3, :3]).T.copy()).to(hu)
    return torch.einsum("rc,c...->r...", to_ras, per_index)


def voxel_opacity(preset: Preset, hu: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Per-mm opacity of each voxel: scalar opacity of HU x gradient factor of |grad| (HU/mm)."""
    return preset.opacity(hu) * preset.gradient_factor(gradient.square().sum(0).sqrt())


def input_channels(
    ct: Volume, preset: Preset, labels: Volume | None = None, gradient: torch.Tensor | None = None
) -> torch.Tensor:
    """The network input [6, K, J, I] float32 on the CT's device (see the table above).

    `gradient` [3, K, J, I] may be passed when already computed (gradient_ras).
    """
    hu = ct.array
    gradient = gradient_ras(ct) if gradient is None else gradient
    mask = (labels.array > 0).to(hu) if labels is not None else torch.zeros_like(hu)
    rgb = preset.rgb(hu).permute(3, 0, 1, 2)
    return torch.cat(
        [normalize_hu(hu)[None], mask[None], rgb, voxel_opacity(preset, hu, gradient)[None]]
    )
