"""What a saved SixDGaussians file must hold, checked when it is loaded; the safetensors writer
and checksums that network weights share.

safetensors keeps no checksum, so damaged data would render: stray splats, +Inf opacities, NaN
means dropped without a word. SixDGaussians.save stores checksums() in the metadata (key
CHECKSUM_KEY: SHA-256 of each tensor's dtype, shape and bytes, and of the metadata fields);
load verifies them where present (files written before them load unverified) and then checks the
contents (check_geometry, check_values) whether or not there were checksums. Every problem is one
ModelFileError naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import ModelFileError
from .volume import grid_bounding_radius, grid_corners_ras

CHECKSUM_KEY = "sha256"
_HASHED_METADATA = ("format", "version", "ijk_to_ras", "volume_shape", "preset")
_METADATA_ENTRY = "metadata"  # the entry of CHECKSUM_KEY that covers the metadata fields
MAX_ABS_LOG_SCALE = 20.0  # |log_scales| above this (scales beyond 5e8 or below 2e-9) is damage


def checksums(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """JSON {tensor name: SHA-256 hex of its dtype, shape and bytes; "metadata": SHA-256 of the
    metadata fields in _HASHED_METADATA}. Tensors on the CPU."""
    sums = {name: tensor_sha256(tensor) for name, tensor in sorted(tensors.items())}
    fields = json.dumps([metadata.get(key) for key in _HASHED_METADATA])
    sums[_METADATA_ENTRY] = hashlib.sha256(fields.encode()).hexdigest()
    return json.dumps(sums, sort_keys=True)


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 hex of a tensor's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{tensor.dtype} {list(tensor.shape)}".encode())
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    digest.update(data.data)  # a memoryview of the bytes: no copy
    return digest.hexdigest()


def verify_checksums(path: Path, tensors: dict[str, torch.Tensor],
                     metadata: dict[str, str]) -> None:
    """ModelFileError naming the tensors (or metadata) whose bytes differ from the checksums saved
    with them; nothing when the file has none (written before they were stored)."""
    if CHECKSUM_KEY not in metadata:
        return
    try:
        saved = json.loads(metadata[CHECKSUM_KEY])
        expected = json.loads(checksums(tensors, metadata))
        changed = sorted(name for name in expected.keys() | saved.keys()
                         if saved.get(name) != expected.get(name))
    except (ValueError, AttributeError):
        changed = [f"checksum entry ({CHECKSUM_KEY})"]
    if changed:
        raise ModelFileError(f"{path} is damaged: the checksums saved with it do not match its "
                             f"{', '.join(changed)}; prepare it again")


def check_geometry(path: Path, metadata: dict[str, str]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(ijk_to_ras [4, 4] float64, volume_shape (K, J, I)) from the metadata; ModelFileError
    unless an invertible affine map (finite, last row 0 0 0 1) and 3 positive whole numbers."""
    try:
        matrix = np.array(json.loads(metadata["ijk_to_ras"]), dtype=np.float64)
        shape = json.loads(metadata["volume_shape"])
    except (KeyError, ValueError, TypeError) as error:
        raise ModelFileError(f"{path} is not a RenderFM Gaussians file (its geometry cannot be "
                             f"read: {error})") from None
    affine = (matrix.shape == (4, 4) and bool(np.all(np.isfinite(matrix)))
              and np.array_equal(matrix[3], [0, 0, 0, 1])
              and abs(np.linalg.det(matrix[:3, :3])) > 1e-12)
    if not affine:
        raise ModelFileError(f"{path} is damaged: ijk_to_ras must be an invertible 4x4 affine "
                             f"map (finite, last row 0 0 0 1), not {matrix.tolist()}")
    whole = isinstance(shape, list) and len(shape) == 3 and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    if not whole:
        raise ModelFileError(f"{path} is damaged: volume_shape must be 3 positive whole numbers "
                             f"(K, J, I voxels), not {shape}")
    return matrix, (shape[0], shape[1], shape[2])


def check_values(path: Path, params: dict[str, torch.Tensor], labels: torch.Tensor,
                 ijk_to_ras: np.ndarray, volume_shape: tuple[int, int, int]) -> None:
    """ModelFileError unless every parameter is finite floating point, log_scales within
    +-MAX_ABS_LOG_SCALE, means (RAS mm) inside the source CT's box widened by its bounding radius
    on each side, and labels non-negative integers."""
    problem = (_parameter_problem(params) or _means_problem(params["means"], ijk_to_ras,
                                                            volume_shape) or _label_problem(labels))
    if problem:
        raise ModelFileError(f"{path} is damaged: {problem}")


def _parameter_problem(params: dict[str, torch.Tensor]) -> str | None:
    for name, values in params.items():
        if not values.dtype.is_floating_point:
            return f"{name} must hold floating-point numbers, not {values.dtype}"
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            return f"{name} holds {int((~finite).sum())} non-finite (NaN or infinite) values"
    scales = params["log_scales"]
    if len(scales) and float(scales.abs().max()) > MAX_ABS_LOG_SCALE:
        return (f"log_scales reach {float(scales.abs().max()):g}, beyond +-{MAX_ABS_LOG_SCALE:g} "
                "(scales must stay between about 2e-9 and 5e8)")
    return None


def _means_problem(means: torch.Tensor, ijk_to_ras: np.ndarray,
                   volume_shape: tuple[int, int, int]) -> str | None:
    corners = grid_corners_ras(ijk_to_ras, volume_shape)
    margin = grid_bounding_radius(ijk_to_ras, volume_shape)
    low = torch.as_tensor(corners.min(axis=0) - margin, dtype=means.dtype)
    high = torch.as_tensor(corners.max(axis=0) + margin, dtype=means.dtype)
    outside = ((means < low) | (means > high)).any(dim=1)
    if not bool(outside.any()):
        return None
    first = means[outside][0].tolist()
    return (f"{int(outside.sum())} means lie far outside the CT's box (e.g. at RAS "
            f"{', '.join(f'{v:.4g}' for v in first)} mm; the box with a margin of "
            f"{margin:.0f} mm runs {_box_text(low, high)})")


def _box_text(low: torch.Tensor, high: torch.Tensor) -> str:
    return ", ".join(f"{axis} {lo:.0f}..{hi:.0f}" for axis, lo, hi in
                     zip("RAS", low.tolist(), high.tolist()))


def _label_problem(labels: torch.Tensor) -> str | None:
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        return f"labels must be integers, not {labels.dtype}"
    if len(labels) and int(labels.min()) < 0:
        return f"labels must be >= 0 (0 = none), not {int(labels.min())}"
    return None


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path,
                     metadata: dict[str, str]) -> None:
    """safetensors' save_file, with its I/O failures (SafetensorError "... (os error 28)") as
    the OSError of that errno."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as error:
        code = re.search(r"os error (\d+)", str(error))
        if code is None:
            raise OSError(str(error)) from None
        raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from None


def read_safetensors(path: Path, error: type[Exception],
                     what: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors on the CPU) of a safetensors file; `error` "{path} is not {what} (...)"
    when it cannot be read as one."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as problem:
        raise error(f"{path} is not {what} ({problem})") from None
    return metadata, tensors
