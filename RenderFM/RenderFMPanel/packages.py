"""Installing the Python packages RenderFM lacks into Slicer's Python; no dialogs here.

RenderFMLib.slicer.dependencies.missing_packages() decides what is missing (PyTorch, the CuPy
build matching the CUDA driver, TotalSegmentator when auto-segmentation is chosen). They are
installed the way Slicer's extensions do it: PyTorch through the PyTorch extension's installer when
that extension is there (it picks the build matching the NVIDIA driver), else with pip;
TotalSegmentator only through the TotalSegmentator extension, which sets up its own dependencies;
everything else with slicer.util.pip_install.
"""

import slicer

TORCH_REQUIREMENT = ">=2.4"  # as pyproject.toml's torch requirement


def install(requirements: list, torch_name: str, totalsegmentator_name: str) -> None:
    """Install each pip requirement; torch_name and totalsegmentator_name are the entries that
    stand for PyTorch and TotalSegmentator (RenderFMLib.slicer.dependencies.TORCH, ...)."""
    for requirement in requirements:
        if requirement == torch_name:
            install_torch()
        elif requirement == totalsegmentator_name:
            install_totalsegmentator()
        else:
            slicer.util.pip_install(requirement)


def install_torch() -> None:
    """PyTorch through the PyTorch extension when present, else the PyPI build through pip."""
    try:
        import PyTorchUtils
    except ImportError:
        slicer.util.pip_install(f"torch{TORCH_REQUIREMENT}")
        return
    installer = PyTorchUtils.PyTorchUtilsLogic()
    if installer.installTorch(askConfirmation=False,
                              torchVersionRequirement=TORCH_REQUIREMENT) is None:
        raise RuntimeError("the PyTorch extension could not install PyTorch; try its PyTorch "
                           "Utils module, then Render again")


def install_totalsegmentator() -> None:
    """TotalSegmentator's Python package through the TotalSegmentator extension."""
    try:
        import TotalSegmentator
    except ImportError:
        raise RuntimeError("auto-segmentation needs the TotalSegmentator extension: install it "
                           "from the Extensions Manager and restart Slicer, or choose the "
                           "threshold segmentation") from None
    TotalSegmentator.TotalSegmentatorLogic().setupPythonRequirements()
