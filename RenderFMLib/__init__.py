"""RenderFM: CT scans to 6D Gaussians, rendered in real time (after Render-FM, arXiv 2505.17338).

The public API, the calls every front end uses (api.py), with the types they take and give:

    from RenderFMLib import prepare, render, default_camera
    gaussians = prepare("ct.nii.gz", segmentation="seg.nii.gz", preset="CT-Bone")
    render(gaussians, default_camera(gaussians, azimuth=30), 512).save_png("view.png")

Names are imported on first use, so `import RenderFMLib.resources` (the preset table the Slicer
module reads before PyTorch is installed) does not import PyTorch.
"""

import importlib

_EXPORTS = {  # public name -> the module that defines it
    **dict.fromkeys(["DEFAULT_PRESET", "MAX_IMAGE_SIDE", "CropBox", "FinetuneResult", "Frame",
                     "Progress",
                     "check_device", "check_finetune_target", "default_camera", "finetune",
                     "load_ct", "load_ct_as_read", "prepare", "render", "shown"], "api"),
    "Camera": "camera",
    "RenderFMError": "errors",
    "SixDGaussians": "gaussians",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'RenderFMLib' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
