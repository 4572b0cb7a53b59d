"""Image metrics: PSNR and SSIM against scikit-image, known values, masks, MS-SSIM, no LPIPS."""

import importlib.util
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from RenderFMLib import metrics

# The SSIM map is computed in float32 about 0.5; against scikit-image's float64 the mean SSIM
# agreed within 2e-7 on noisy, flat-bright (the worst case for float32 variances) and rendered
# images, so 1e-4 leaves a wide margin.
SSIM_TOL = 1e-4


def _skimage_ssim(a, b, full=False):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1, channel_axis=-1,
                                 full=full)


def _image(shape, seed, smooth=2.0):
    """A smooth random RGB image in [0, 1] (structure at several scales, like a render)."""
    rng = np.random.default_rng(seed)
    noise = rng.random(shape)
    image = gaussian_filter(noise, sigma=(smooth, smooth, 0)) + 0.2 * noise
    return (image - image.min()) / (image.max() - image.min())


def _noisy(image, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0.0, 1.0)


@pytest.mark.parametrize("shape", [(64, 64, 3), (37, 53, 3), (128, 96, 3)])
def test_ssim_and_psnr_match_skimage(shape):
    a = _image(shape, 0)
    b = _noisy(a, 0.08, 1)
    assert metrics.ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=SSIM_TOL)
    assert metrics.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1),
                                               rel=1e-9)


def test_uint8_torch_and_numpy_inputs_agree():
    a = (_image((48, 40, 3), 2) * 255).round().astype(np.uint8)
    b = (_noisy(a / 255.0, 0.05, 3) * 255).round().astype(np.uint8)
    as_float = metrics.ssim(a / 255.0, b / 255.0)
    assert metrics.ssim(a, b) == pytest.approx(as_float, abs=1e-12)
    assert metrics.ssim(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(as_float,
                                                                                  abs=1e-12)
    assert metrics.ssim(torch.from_numpy(a / 255.0).float(), b) == pytest.approx(as_float, abs=1e-6)
    assert metrics.ssim(a, b) == pytest.approx(
        _skimage_ssim(a / 255.0, b / 255.0), abs=SSIM_TOL)


def test_identical_images():
    a = _image((200, 180, 3), 4)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)


def test_known_mse_gives_known_psnr():
    a = np.full((16, 16, 3), 0.5)
    b = a + 0.1  # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert metrics.psnr(a, b) == pytest.approx(20.0, abs=1e-9)
    assert metrics.psnr(a, b, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2), abs=1e-9)


def test_masked_psnr_counts_only_mask_pixels():
    a = _image((40, 50, 3), 5)
    mask = np.zeros((40, 50), dtype=bool)
    mask[10:30, 5:25] = True
    b = a.copy()
    b[~mask] = 1.0 - b[~mask]  # changes only outside the mask
    assert metrics.psnr(a, b, mask) == math.inf
    assert metrics.psnr(a, b) < 15.0  # the unmasked PSNR sees the change
    b[mask] = np.clip(b[mask] + 0.05, 0, 1)
    inside = np.mean((a[mask] - b[mask]) ** 2)
    assert metrics.psnr(a, b, mask) == pytest.approx(10 * math.log10(1 / inside), rel=1e-9)


def test_masked_ssim_is_the_mean_of_the_map_over_the_mask():
    a = _image((64, 72, 3), 6)
    b = _noisy(a, 0.1, 7)
    mask = np.zeros((64, 72), dtype=bool)
    mask[20:50, 10:40] = True
    _, full_map = _skimage_ssim(a, b, full=True)
    expected = full_map.mean(-1)[mask].mean()  # the mask lies > 5 px from every border
    assert metrics.ssim(a, b, mask) == pytest.approx(expected, abs=SSIM_TOL)
    assert metrics.ssim(a, b, np.ones((64, 72))) == pytest.approx(metrics.ssim(a, b), abs=1e-12)


def test_masked_ssim_ignores_pixels_outside_the_mask():
    a = _image((64, 64, 3), 8)
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 16:48] = True
    reach = np.zeros_like(mask)  # pixels whose 11 x 11 window touches the mask
    reach[11:53, 11:53] = True
    b = a.copy()
    b[~reach] = _noisy(a, 0.3, 9)[~reach]
    assert metrics.ssim(a, b, mask) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(a, b) < 0.9
    c = a.copy()
    c[mask] = _noisy(a, 0.1, 10)[mask]
    assert metrics.ssim(a, c, mask) < 0.9


def test_ms_ssim_decreases_with_noise():
    a = _image((192, 192, 3), 11)
    values = [metrics.ms_ssim(a, _noisy(a, sigma, 12)) for sigma in (0.02, 0.05, 0.1, 0.2)]
    assert all(x > y for x, y in itertools.pairwise(values)), values
    assert 0.0 < values[-1] < values[0] < 1.0


def test_ms_ssim_too_small_names_the_minimum():
    a = _image((160, 300, 3), 13)
    with pytest.raises(ValueError, match="161x161"):
        metrics.ms_ssim(a, a)
    assert metrics.image_metrics(a, a)["ms_ssim"] is None


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((16, 16, 3)), np.zeros((16, 17, 3)), "differ in shape"),
        (np.zeros((16, 16, 3)), np.full((16, 16, 3), 1.5), "in \\[0, 1\\]"),
        (np.zeros((16, 16, 3)), np.full((16, 16, 3), np.nan), "finite"),
        (np.zeros((16, 16, 3), dtype=np.int32), np.zeros((16, 16, 3)), "uint8 or float"),
        (np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 16, 3)), "\\[H, W, 3\\]"),
        (np.zeros((8, 16, 3)), np.zeros((8, 16, 3)), "at least 11x11"),
    ],
)
def test_bad_images_raise_value_error(a, b, match):
    with pytest.raises(ValueError, match=match):
        metrics.ssim(a, b)


def test_bad_masks_raise_value_error():
    a = np.zeros((32, 32, 3))
    with pytest.raises(ValueError, match="mask must be"):
        metrics.psnr(a, a, np.ones((32, 31)))
    with pytest.raises(ValueError, match="no pixel"):
        metrics.psnr(a, a, np.zeros((32, 32)))
    border_only = np.zeros((32, 32), dtype=bool)
    border_only[:3] = True
    with pytest.raises(ValueError, match="farther than 5 px"):
        metrics.ssim(a, a, border_only)


@pytest.mark.skipif(importlib.util.find_spec("lpips") is not None,
                    reason="the lpips package is installed here")
def test_lpips_is_none_without_the_lpips_package():
    a = _image((32, 32, 3), 14)
    assert metrics.lpips(a, a) is None
    result = metrics.image_metrics(a, a, mask=np.ones((32, 32)))
    assert result["lpips"] is None
    assert set(result) == {"psnr", "ssim", "ms_ssim", "lpips", "psnr_masked", "ssim_masked"}
