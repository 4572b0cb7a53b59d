"""Image metrics: PSNR and SSIM against scikit-image, known values, masks, MS-SSIM, no LPIPS."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from RenderFMLib.errors import ModelFileError
from RenderFMLib.evaluation import lpips, metrics

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


def test_lpips_is_none_without_weights(monkeypatch):
    monkeypatch.delenv(lpips.WEIGHTS_VARIABLE, raising=False)
    a = _image((32, 32, 3), 14)
    assert metrics.lpips(a, a) is None
    result = metrics.image_metrics(a, a, mask=np.ones((32, 32)))
    assert result["lpips"] is None
    assert set(result) == {"psnr", "ssim", "ms_ssim", "lpips", "psnr_masked", "ssim_masked"}


def _lpips_weights(path):
    """A weights file of the documented layout with random (not trained) values: a stand-in for
    the real LPIPS weights, which RenderFM cannot ship; it checks the computation, not the
    scores."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(3)
    shapes = {"conv1": (64, 3, 11), "conv2": (192, 64, 5), "conv3": (384, 192, 3),
              "conv4": (256, 384, 3), "conv5": (256, 256, 3)}
    tensors = {}
    for number, (name, (out, cin, k)) in enumerate(shapes.items(), start=1):
        weight = torch.randn(out, cin, k, k, generator=generator)
        tensors[f"{name}.weight"] = weight / (cin * k * k) ** 0.5
        tensors[f"{name}.bias"] = 0.1 * torch.randn(out, generator=generator)
        tensors[f"lin{number}.weight"] = torch.rand(1, out, 1, 1, generator=generator)
    save_file(tensors, str(path))
    return tensors


def _alexnet_lpips(a, b, tensors):
    """LPIPS written independently with torch.nn modules in torchvision's AlexNet layout."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 11, 4, 2), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2),
        torch.nn.Conv2d(64, 192, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2),
        torch.nn.Conv2d(192, 384, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(384, 256, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(256, 256, 3, padding=1), torch.nn.ReLU())
    for index, name in zip((0, 3, 6, 8, 10), ("conv1", "conv2", "conv3", "conv4", "conv5")):
        net[index].weight.data = tensors[f"{name}.weight"]
        net[index].bias.data = tensors[f"{name}.bias"]
    taps = (1, 4, 7, 9, 11)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    xa, xb = [(torch.from_numpy(x).permute(2, 0, 1)[None].float() * 2 - 1 - shift) / scale
              for x in (a, b)]
    total = 0.0
    with torch.no_grad():
        for number, layer in enumerate(net):
            xa, xb = layer(xa), layer(xb)
            if number in taps:
                unit = [x / (x.norm(dim=1, keepdim=True) + 1e-10) for x in (xa, xb)]
                weight = tensors[f"lin{taps.index(number) + 1}.weight"].view(1, -1, 1, 1)
                total += float(((unit[0] - unit[1]) ** 2 * weight).sum(1).mean())
    return total


def test_lpips_from_a_safetensors_file(tmp_path, monkeypatch):
    tensors = _lpips_weights(tmp_path / "lpips.safetensors")
    monkeypatch.setenv(lpips.WEIGHTS_VARIABLE, str(tmp_path / "lpips.safetensors"))
    a, b = _image((96, 96, 3), 5), _image((96, 96, 3), 6)
    assert metrics.lpips(a, a) == 0.0
    distance = metrics.lpips(a, b)
    assert distance > 0 and distance == pytest.approx(metrics.lpips(b, a), rel=1e-6)
    assert distance == pytest.approx(_alexnet_lpips(a, b, tensors), rel=1e-5)


def test_lpips_rejects_a_wrong_file(tmp_path):
    from safetensors.torch import save_file

    save_file({"conv1.weight": torch.zeros(64, 3, 5, 5)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ModelFileError, match="conv1.weight must have shape"):
        lpips.load_weights(tmp_path / "bad.safetensors")
    (tmp_path / "not.safetensors").write_text("pickle? no")
    with pytest.raises(ModelFileError, match="cannot be read"):
        lpips.load_weights(tmp_path / "not.safetensors")
