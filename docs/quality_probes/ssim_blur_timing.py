"""Time SSIM's separable 11-tap Gaussian blur (metrics._blur: grouped conv2d) on the 15 maps of a
167 px fine-tuning window, forward and backward, against three other ways of writing it (each
checked against it first): a batched conv2d, banded matrices and sums of shifted slices.

    python docs/quality_probes/ssim_blur_timing.py
"""

import time

import torch
import torch.nn.functional as F

from RenderFMLib.evaluation.metrics import _blur, _window

torch.manual_seed(0)
maps = torch.rand(15, 167, 167)
weights = _window(maps.device)


def batched(x):
    y = F.conv2d(x[:, None], weights.view(1, 1, 1, -1))
    return F.conv2d(y, weights.view(1, 1, -1, 1))[:, 0]


def banded(x):
    h, w = x.shape[1:]
    across = torch.zeros(w, w - 10)
    down = torch.zeros(h - 10, h)
    for k in range(11):
        across[torch.arange(w - 10) + k, torch.arange(w - 10)] = weights[k]
        down[torch.arange(h - 10), torch.arange(h - 10) + k] = weights[k]
    return down @ (x @ across)


def shifted(x):
    h, w = x.shape[1:]
    y = sum(weights[k] * x[:, :, k:w - 10 + k] for k in range(11))
    return sum(weights[k] * y[:, k:h - 10 + k, :] for k in range(11))


for name, blur in (("grouped conv2d (metrics._blur)", _blur), ("batched conv2d", batched),
                   ("banded matrices", banded), ("shifted sums", shifted)):
    x = maps.clone().requires_grad_()
    print(f"{name}: largest difference from _blur {(blur(x) - _blur(maps)).abs().max():.1e}")
    for _ in range(5):
        blur(x).sum().backward()
    started = time.perf_counter()
    for _ in range(50):
        blur(x).square().sum().backward()
    both = (time.perf_counter() - started) / 50 * 1e3
    with torch.no_grad():
        started = time.perf_counter()
        for _ in range(50):
            blur(maps)
        forward = (time.perf_counter() - started) / 50 * 1e3
    print(f"  forward {forward:.2f} ms, forward and backward {both:.2f} ms")
