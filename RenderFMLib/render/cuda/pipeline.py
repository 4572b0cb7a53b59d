"""One frame on the GPU: slice_project -> tile_keys -> blend with the CUDA stages (stages.py).

`render_cuda` takes what the PyTorch reference path of api.render takes and returns what it
returns, so api.render can use either; it checks its inputs here, once (`run_pipeline` and the
stages trust them), and turns running out of GPU memory into a RenderFMError that names the
sizes (the CPU path stays usable in the same process).
"""

from __future__ import annotations

import torch

from ...errors import RenderFMError
from .buffers import POOL
from .loader import available
from .stages import blend, slice_project, tile_keys

GAUSSIAN_SHAPES = {"means": (3,), "dir_means": (3,), "s_c": (3, 3), "gains": (3, 3),
                   "s_dd_inv": (3, 3), "opacity_logits": (), "rgb": (3,), "sh": (9,),
                   "specular_sh": (9,)}
CAMERA_SHAPES = {"world_to_camera": (4, 4), "intrinsics": (3, 3), "camera_centre": (3,),
                 "background": (3,)}


def render_cuda(
    means: torch.Tensor,
    dir_means: torch.Tensor,
    s_c: torch.Tensor,
    gains: torch.Tensor,
    s_dd_inv: torch.Tensor,
    opacity_logits: torch.Tensor,
    rgb: torch.Tensor,
    sh: torch.Tensor,
    specular_sh: torch.Tensor,
    world_to_camera: torch.Tensor,
    intrinsics: torch.Tensor,
    camera_centre: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render N Gaussians with the CUDA kernels.

    Gaussians: means [N, 3] mu_p RAS mm, dir_means [N, 3], s_c [N, 3, 3] mm^2, gains [N, 3, 3] mm,
    s_dd_inv [N, 3, 3], opacity_logits [N], rgb [N, 3], sh [N, 9], specular_sh [N, 9]; camera:
    world_to_camera [4, 4] (OpenCV), intrinsics [3, 3] px, camera_centre [3] RAS mm; image width
    x height px; background [3] RGB. All float32 on one CUDA device. Returns rgb [H, W, 3],
    alpha [H, W] and depth [H, W] mm on that device, differentiable with respect to the
    Gaussians and the background (not the camera). RenderFMError if CUDA or CuPy is missing, an
    input is not as described, or the GPU runs out of memory.
    """
    reason = available()
    if reason is not None:
        raise RenderFMError(f"the CUDA renderer cannot run here: {reason}")
    gaussians = (means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh, specular_sh)
    camera = (world_to_camera, intrinsics, camera_centre, background)
    check_inputs(dict(zip(GAUSSIAN_SHAPES, gaussians)), dict(zip(CAMERA_SHAPES, camera)), width,
                 height)
    try:
        return run_pipeline(*gaussians, world_to_camera, intrinsics, camera_centre, width, height,
                            background)
    except torch.cuda.OutOfMemoryError:
        POOL.clear()
        torch.cuda.empty_cache()
        raise RenderFMError(_out_of_memory(means.device, means.shape[0], width, height)) from None


def run_pipeline(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                 specular_sh, world_to_camera, intrinsics, camera_centre, width: int,
                 height: int, background) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """render_cuda's frame without its checks: slice_project -> tile_keys -> blend (stages.py)."""
    projected = slice_project(means, dir_means, s_c, gains, s_dd_inv, opacity_logits, rgb, sh,
                              specular_sh, world_to_camera, intrinsics, camera_centre, width,
                              height)
    ids, ranges = tile_keys(projected["means2d"], projected["radii"], projected["depths"], width,
                            height)
    return blend(projected["means2d"], projected["conics"], projected["colors"],
                 projected["opacities"], projected["depths"], ids, ranges, width, height,
                 background)


def check_inputs(gaussians: dict[str, torch.Tensor], camera: dict[str, torch.Tensor], width: int,
                 height: int) -> None:
    """RenderFMError unless every tensor is float32 on one CUDA device with its shape
    (GAUSSIAN_SHAPES with a common N, CAMERA_SHAPES), the camera needs no gradient and the image
    size is positive."""
    tensors = {**gaussians, **camera}
    device = gaussians["means"].device
    n = gaussians["means"].shape[0] if gaussians["means"].dim() else -1
    expected = {**{k: (n, *s) for k, s in GAUSSIAN_SHAPES.items()}, **CAMERA_SHAPES}
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != expected[name]:
            raise RenderFMError(f"{name} has shape {tuple(tensor.shape)}, expected "
                                f"{expected[name]}")
        if tensor.dtype != torch.float32 or tensor.device != device:
            raise RenderFMError(f"{name} is {tensor.dtype} on {tensor.device}; the CUDA renderer "
                                f"needs float32 on the Gaussians' device ({device}) for every "
                                "input")
    for name in ("world_to_camera", "intrinsics", "camera_centre"):
        if camera[name].requires_grad:
            raise RenderFMError(f"{name} requires grad, but the CUDA renderer does not "
                                "differentiate the camera; use the torch backend")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise RenderFMError(f"image size must be positive integers, not {width}x{height}")
    if device.type != "cuda":
        raise RenderFMError(f"the CUDA renderer needs the Gaussians on a CUDA device, not {device}")


def _out_of_memory(device: torch.device, n: int, width: int, height: int) -> str:
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    free = torch.cuda.mem_get_info(device)[0] / 2**30
    return (f"out of GPU memory rendering {n:,} Gaussians at {width}x{height} px on "
            f"{torch.cuda.get_device_name(device)} ({free:.1f} of {total:.1f} GiB free now); "
            "render fewer Gaussians (hide groups), a smaller image, or use the CPU")
