"""render(backend=...): the CUDA kernels where they can run, the PyTorch reference otherwise."""

import pytest
import torch

from RenderFMLib import api
from RenderFMLib.cli import main
from RenderFMLib.errors import RenderFMError
from RenderFMLib.render.cuda.loader import available
from RenderFMLib.resources import resource_path

SAMPLE = resource_path("sample", "ct.nii.gz")


@pytest.fixture(scope="module")
def gaussians():
    return api.prepare(SAMPLE, None, "CT-AAA")


def test_auto_is_the_reference_on_the_cpu(gaussians):
    camera = api.default_camera(gaussians, azimuth=30.0)
    auto = api.render(gaussians, camera, 48)
    reference = api.render(gaussians, camera, 48, backend="torch")
    assert torch.equal(auto.rgb, reference.rgb) and torch.equal(auto.alpha, reference.alpha)
    assert auto.alpha.max() > 0.5  # the CT is in the picture


@pytest.mark.skipif(available() is None, reason="CuPy and a CUDA device are present")
def test_cupy_without_a_gpu_says_why(gaussians):
    with pytest.raises(RenderFMError) as error:
        api.render(gaussians, api.default_camera(gaussians), 32, backend="cuda")
    assert available() in str(error.value)


def test_auto_picks_the_kernels_only_for_float32_gaussians_on_a_gpu(monkeypatch):
    """As if CuPy and a GPU were there (a stand-in: none is on this machine)."""
    from types import SimpleNamespace

    monkeypatch.setattr(api, "_cuda_problem", lambda: None)
    monkeypatch.setattr(api, "render_cuda", "the CUDA renderer")

    def fake(device: str, dtype: torch.dtype):
        return SimpleNamespace(device=torch.device(device), means=torch.zeros(1, dtype=dtype))

    assert api._renderer("auto", fake("cuda:0", torch.float32)) == "the CUDA renderer"
    assert api._renderer("auto", fake("cuda:0", torch.float64)) is api.render_torch
    assert api._renderer("auto", fake("cpu", torch.float32)) is api.render_torch
    assert api._renderer("torch", fake("cuda:0", torch.float32)) is api.render_torch
    assert api._renderer("cuda", fake("cpu", torch.float32)) == "the CUDA renderer"


def test_unknown_backend(gaussians):
    with pytest.raises(RenderFMError, match="unknown backend 'vulkan'"):
        api.render(gaussians, api.default_camera(gaussians), 32, backend="vulkan")


@pytest.mark.skipif(available() is None, reason="CuPy and a CUDA device are present")
def test_cli_backend_cuda_is_one_line(tmp_path, capsys):
    status = main(["render", str(SAMPLE), "--preset", "CT-AAA", "--size", "32", "--backend",
                   "cuda", "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert status == 2 and err == f"renderfm: error: --backend cuda: {available()}\n"
    assert not (tmp_path / "out.png").exists()
