"""float32 rounding bounds that the host checks of the CUDA math derive their tolerances from.

Both sides of a comparison (the header built by g++ and the PyTorch reference, float32 each)
round differently: other summation orders, fused multiply-adds in torch's BLAS, an ulp between
libm's and torch's exp. These bounds say how far apart that can put them, per Gaussian.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 2.0**-23  # float32 machine epsilon
CAMERA_ULPS = 8.0  # rounding allowed in camera coordinates, in EPS of their terms (measured 0.9)


def slice_terms(inputs: dict[str, np.ndarray], centre: torch.Tensor
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per Gaussian, the sizes that bound slicing's float32 rounding (float64, from its inputs
    `inputs` by name and the camera centre [3] RAS mm):

    mm [n]: |mu_p| + |K| (|delta| + 1), summed over entries: what mu_c = mu_p + K delta adds up,
    with delta a difference of unit vectors, so that delta carries an absolute rounding of a few
    EPS however small it is; quad [n]: |delta|^T |S| |delta| + 2 |S| |delta| summed, the same for
    delta^T S_dd^-1 delta.
    """
    x = {k: inputs[k].astype(np.float64) for k in ("means", "dir_means", "gains", "s_dd_inv")}
    centre = centre.numpy().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        view = x["means"] - centre
        view /= np.maximum(np.linalg.norm(view, axis=1, keepdims=True), 1e-12)
        mean_dir = x["dir_means"] / np.maximum(
            np.linalg.norm(x["dir_means"], axis=1, keepdims=True), 1e-12)
        delta = np.abs(view - mean_dir)
        gains, s_inv = np.abs(x["gains"]).reshape(-1, 3, 3), np.abs(x["s_dd_inv"]).reshape(-1, 3, 3)
        mm = np.abs(x["means"]).sum(1) + (gains @ (delta + 1.0)[..., None]).sum((1, 2))
        s_delta = (s_inv @ delta[..., None])[..., 0]
        quad = (delta * s_delta).sum(1) + 2.0 * s_delta.sum(1)
    return mm, quad


def camera_error(inputs: dict[str, np.ndarray], world_to_camera: torch.Tensor,
                 centre: torch.Tensor) -> np.ndarray:
    """[n] mm: the float32 rounding allowed in a Gaussian's camera coordinates.

    p = R mu_c + t sums terms as large as those of mu_c (slice_terms) and |t|; the two sides sum
    them in other orders (torch's BLAS also fuses multiply-adds), so p differs by a few ulps of
    those terms even where p itself is small (near the camera): CAMERA_ULPS of them.
    """
    translation = np.abs(world_to_camera[:3, 3].numpy()).sum()
    return CAMERA_ULPS * EPS * (slice_terms(inputs, centre)[0] + translation)
