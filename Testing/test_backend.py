"""render(backend=...): the CUDA or CPU kernels where they can run, the PyTorch reference
otherwise (render/backends.py)."""

import pytest
import torch

from RenderFMLib import api
from RenderFMLib.cli import main
from RenderFMLib.errors import RenderFMError
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.render import backends
from RenderFMLib.render.cpu import available as cpu_problem
from RenderFMLib.render.cuda.loader import available
from RenderFMLib.resources import resource_path

SAMPLE = resource_path("sample", "ct.nii.gz")


@pytest.fixture(scope="module")
def gaussians():
    return api.prepare(SAMPLE, None, "CT-AAA")


@pytest.mark.skipif(cpu_problem() is not None, reason="the CPU kernels cannot be built here")
def test_auto_is_the_cpu_kernels_on_the_cpu(gaussians):
    camera = api.default_camera(gaussians, azimuth=30.0)
    auto = api.render(gaussians, camera, 48)
    kernels = api.render(gaussians, camera, 48, backend="cpu")
    reference = api.render(gaussians, camera, 48, backend="torch")
    assert torch.equal(auto.rgb, kernels.rgb) and torch.equal(auto.alpha, kernels.alpha)
    # float32 rounding apart (test_cpu_kernels compares the stages, gradients included)
    assert torch.allclose(auto.rgb, reference.rgb, atol=1e-5)
    assert auto.alpha.max() > 0.5  # the CT is in the picture


def test_cpu_backend_refuses_float64(gaussians):
    double = SixDGaussians({name: value.double() for name, value in gaussians.params().items()},
                           gaussians.labels, gaussians.ijk_to_ras, gaussians.volume_shape,
                           gaussians.preset)
    with pytest.raises(RenderFMError, match="the CPU kernels cannot render.*float64"):
        api.render(double, api.default_camera(gaussians), 32, backend="cpu")


@pytest.mark.skipif(available() is None, reason="CuPy and a CUDA device are present")
def test_cupy_without_a_gpu_says_why(gaussians):
    with pytest.raises(RenderFMError) as error:
        api.render(gaussians, api.default_camera(gaussians), 32, backend="cuda")
    assert available() in str(error.value)


def test_auto_picks_the_kernels_only_for_float32_gaussians(monkeypatch):
    """As if CuPy and a GPU were there (a stand-in: none is on this machine)."""

    monkeypatch.setattr(backends, "_cuda_problem", lambda: None)
    monkeypatch.setattr(backends, "_cpu_problem", lambda: None)
    monkeypatch.setattr(backends, "render_cuda", "the CUDA renderer")

    def pick(backend: str, device: str, dtype: torch.dtype):
        return backends.pick(backend, torch.device(device), dtype)

    assert pick("auto", "cuda:0", torch.float32) == "the CUDA renderer"
    assert pick("auto", "cuda:0", torch.float64) is backends.render_torch
    assert pick("auto", "cpu", torch.float32) is backends.render_cpu
    assert pick("auto", "cpu", torch.float64) is backends.render_torch
    assert pick("torch", "cuda:0", torch.float32) is backends.render_torch
    assert pick("cuda", "cpu", torch.float32) == "the CUDA renderer"
    monkeypatch.setattr(backends, "_cpu_problem", lambda: "no C++ compiler")
    assert pick("auto", "cpu", torch.float32) is backends.render_torch
    with pytest.raises(RenderFMError, match="CPU kernels cannot render.*no C\\+\\+ compiler"):
        pick("cpu", "cpu", torch.float32)


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


def test_cli_backend_cpu_without_a_compiler_is_one_line(tmp_path, capsys, monkeypatch):
    """As if no C++ compiler were found (a stand-in: this machine has g++)."""
    import RenderFMLib.render.cpu as cpu

    monkeypatch.setattr(cpu, "available", lambda: "no C++ compiler (g++, or $CXX) on the PATH")
    status = main(["render", str(SAMPLE), "--preset", "CT-AAA", "--size", "32", "--backend",
                   "cpu", "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert status == 2
    assert err == "renderfm: error: --backend cpu: no C++ compiler (g++, or $CXX) on the PATH\n"
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(cpu_problem() is not None, reason="the CPU kernels cannot be built here")
def test_cli_backend_cpu_renders(tmp_path, capsys):
    out = tmp_path / "out.png"
    status = main(["render", str(SAMPLE), "--preset", "CT-AAA", "--size", "32", "--backend",
                   "cpu", "-o", str(out)])
    assert status == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
