"""What the Slicer module installs and where it renders (RenderFMLib/slicer/dependencies.py):
decided without installing anything, and without importing PyTorch, CuPy or Slicer."""

import pytest

from RenderFMLib.errors import RenderFMError
from RenderFMLib.slicer import dependencies
from RenderFMLib.slicer.dependencies import resolve_device


def test_cpu_fallback_says_it_is_slower():
    import torch

    with pytest.raises(RenderFMError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == ("cpu", "running on the CPU, slower than on a CUDA GPU")
    if torch.cuda.is_available():
        assert resolve_device("auto")[0] == "cuda"
    else:
        for choice in ("auto", "cuda"):
            device, message = resolve_device(choice)
            assert device == "cpu" and message.startswith("CUDA not available")
            assert "slower" in message


def test_dependencies_import_neither_torch_nor_cupy():
    import subprocess
    import sys

    probe = ("import sys, RenderFMLib.slicer.dependencies as d; d.missing_packages(); "
             "print(sorted({'torch', 'cupy', 'vtk', 'slicer'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_dependencies_decide_without_installing():
    assert dependencies.installed("torch") and not dependencies.installed("no_such_module_here")
    assert dependencies.cupy_requirement(None) is None
    assert dependencies.cupy_requirement((10, 2)) is None
    assert dependencies.cupy_requirement((11, 8)) == "cupy-cuda11x"
    assert dependencies.cupy_requirement((12, 4)) == "cupy-cuda12x"
    assert dependencies.cupy_requirement((13, 0)) == "cupy-cuda12x"  # drivers run older builds
    missing = dependencies.missing_packages()
    assert "torch" not in missing
    if dependencies.cuda_driver_version() is None or dependencies.installed("cupy"):
        assert not any(name.startswith("cupy") for name in missing)
    else:
        assert any(name.startswith("cupy-cuda") for name in missing)


def test_slicer_installs_every_core_dependency():
    """The module installs what pyproject.toml's [project] dependencies name, nothing less."""
    import re

    import tomllib

    from RenderFMLib.resources import resource_path

    pyproject = resource_path().parent / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not a source checkout")
    listed = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", requirement)[0].lower() for requirement in listed}
    assert names == {package.lower() for package in dependencies.LIBRARY_PACKAGES.values()}
    assert all(dependencies.installed(module) for module in dependencies.LIBRARY_PACKAGES)
