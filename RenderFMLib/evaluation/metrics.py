"""Image metrics: PSNR, SSIM, MS-SSIM, their masked variants, and LPIPS where it is installed.

Images: [H, W, 3] (or [H, W], [H, W, C]) numpy arrays or torch tensors, either float in [0, 1] or
uint8 (divided by 255); the two images of a pair must have the same shape. A mask is [H, W], true
(or non-zero) on the pixels that count, e.g. the foreground alpha > 0.5 of a reference render.

SSIM follows Wang et al. 2004 with scikit-image's settings (gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1): an 11 x 11 Gaussian window (sigma 1.5 px), K1 = 0.01,
K2 = 0.03, the map averaged over the pixels whose window lies inside the image (5 px from each
border are left out, as scikit-image does) and over the channels; computed in float32 (10x
faster than float64 on CPU): measured against scikit-image's float64, the mean within 1e-6 and
single pixels within 1e-4 (7e-5 in flat bright areas, float32's worst case). Masked SSIM is the
mean of that map over the mask's pixels. MS-SSIM is pytorch-msssim's (5 scales, its standard
weights), also in float32.

LPIPS (Zhang et al. 2018, AlexNet) runs only from a local .safetensors weights file named by
RENDERFM_LPIPS_WEIGHTS (lpips.py says what it holds); RenderFM ships none, downloads none and
never unpickles any. Without it lpips() returns None and image_metrics() reports None.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
MS_SSIM_MIN_SIDE = (SSIM_WINDOW - 1) * 2**4 + 1  # pytorch-msssim's limit for 5 scales: 161 px


def _as_image(image, name: str) -> torch.Tensor:
    """[H, W, C] float64 in [0, 1] from a uint8 or float array/tensor of [H, W] or [H, W, C]."""
    if isinstance(image, torch.Tensor):
        tensor = image
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(image))
    if tensor.dim() == 2:
        tensor = tensor[..., None]
    if tensor.dim() != 3 or min(tensor.shape) == 0:
        raise ValueError(f"{name} must be an [H, W, 3] (or [H, W]) image, not "
                         f"{tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.double() / 255.0
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be uint8 or float in [0, 1], not {tensor.dtype}")
    tensor = tensor.detach().double()
    low, high = tensor.min().item(), tensor.max().item()
    if not bool(torch.isfinite(tensor).all()) or low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{name} must be uint8 or hold finite values in [0, 1]; its values run "
                         f"{low:g}..{high:g}")
    return tensor.clamp(0.0, 1.0)


def _pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images as [H, W, C] float64 on a's device; ValueError if their shapes differ."""
    a, b = _as_image(a, "image a"), _as_image(b, "image b")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b.to(a.device)


def _as_mask(mask, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """[H, W] bool mask on device; ValueError if its shape is not the images' or it is empty."""
    tensor = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask))
    if tuple(tensor.shape) != tuple(shape[:2]):
        raise ValueError(f"the mask must be [H, W] = {tuple(shape[:2])} like the images, not "
                         f"{tuple(tensor.shape)}")
    tensor = tensor.to(device) != 0
    if not bool(tensor.any()):
        raise ValueError("the mask selects no pixel")
    return tensor


def psnr(a, b, mask=None, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(data_range^2 / MSE), over all pixels and
    channels or over the mask's pixels; inf for identical images. data_range is in the [0, 1]
    units the images are brought to."""
    a, b = _pair(a, b)
    squared = (a - b).square()
    if mask is not None:
        squared = squared[_as_mask(mask, a.shape, a.device)]
    mse = float(squared.mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


@functools.lru_cache(maxsize=8)
def _window(device: torch.device) -> torch.Tensor:
    """[11] normalised 1D Gaussian weights (sigma 1.5 px), float32."""
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    weights = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return (weights / weights.sum()).float().to(device)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Valid separable Gaussian filtering of [N, H, W] -> [N, H - 10, W - 10]."""
    n = x.shape[0]
    window = _window(x.device)
    x = F.conv2d(x[None], window.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
    return F.conv2d(x, window.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)[0]


def ssim_map(a, b) -> torch.Tensor:
    """SSIM per pixel [H - 10, W - 10] (mean over channels), for the pixels whose 11 x 11
    window lies inside the image: pixel (y, x) of the map is image pixel (y + 5, x + 5)."""
    return ssim_values(*_pair(a, b))


def ssim_values(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ssim_map of two checked [H, W, C] images in [0, 1]."""
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, not "
                         f"{a.shape[1]}x{a.shape[0]}")
    # float32 about 0.5: the shift leaves (co)variances unchanged and limits the cancellation in
    # E[x^2] - E[x]^2 (see the module docstring for the measured agreement).
    x, y = (image.permute(2, 0, 1).float() - 0.5 for image in (a, b))
    mean_x, mean_y, xx, yy, xy = _blur(torch.cat([x, y, x * x, y * y, x * y])).chunk(5)
    var_x, var_y = xx - mean_x.square(), yy - mean_y.square()
    covariance = xy - mean_x * mean_y
    mean_x, mean_y = mean_x + 0.5, mean_y + 0.5
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    numerator = (2 * mean_x * mean_y + c1) * (2 * covariance + c2)
    denominator = (mean_x.square() + mean_y.square() + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(0)


def ssim(a, b, mask=None) -> float:
    """Structural similarity in [-1, 1] (1 for identical images): the mean of ssim_map, or its
    mean over the mask's pixels (those within 5 px of the border never count)."""
    a, b = _pair(a, b)
    values = ssim_values(a, b)
    if mask is None:
        return float(values.mean())
    border = SSIM_WINDOW // 2
    inner = _as_mask(mask, a.shape, a.device)[border:-border, border:-border]
    if not bool(inner.any()):
        raise ValueError(f"the mask selects no pixel farther than {border} px from the border")
    return float(values[inner].mean())


def ms_ssim(a, b) -> float:
    """Multi-scale SSIM (pytorch-msssim, 5 scales); ValueError for images whose smaller side is
    under MS_SSIM_MIN_SIDE (161) pixels."""
    a, b = _pair(a, b)
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} "
                         f"pixels (5 scales), not {a.shape[1]}x{a.shape[0]}")
    from pytorch_msssim import ms_ssim as _ms_ssim

    return float(_ms_ssim(_batch(a).float(), _batch(b).float(), data_range=1.0))


def _batch(image: torch.Tensor) -> torch.Tensor:
    """[H, W, C] -> [1, C, H, W]."""
    return image.permute(2, 0, 1)[None]


def lpips(a, b) -> float | None:
    """LPIPS distance (AlexNet; 0 for identical images, lower is closer) of two RGB images, or
    None when no LPIPS weights are installed (RenderFMLib.evaluation.lpips)."""
    a, b = _pair(a, b)
    if a.shape[2] != 3:
        raise ValueError(f"LPIPS needs RGB images, not {a.shape[2]} channels")
    from .lpips import lpips_distance

    scaled_a, scaled_b = (_batch(image).float().cpu() * 2.0 - 1.0  # LPIPS wants [-1, 1]
                          for image in (a, b))
    return lpips_distance(scaled_a, scaled_b)


def image_metrics(a, b, mask=None) -> dict[str, float | None]:
    """All metrics of a pair: psnr (dB), ssim, ms_ssim (None for images under 161 px), lpips
    (None when unavailable or not RGB), and, with a mask, psnr_masked and ssim_masked."""
    small = min(_as_image(a, "image a").shape[:2]) < MS_SSIM_MIN_SIDE
    result = {
        "psnr": psnr(a, b),
        "ssim": ssim(a, b),
        "ms_ssim": None if small else ms_ssim(a, b),
        "lpips": lpips(a, b) if _as_image(a, "image a").shape[2] == 3 else None,
    }
    if mask is not None:
        result["psnr_masked"] = psnr(a, b, mask)
        result["ssim_masked"] = ssim(a, b, mask)
    return result
