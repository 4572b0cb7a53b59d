"""Scratch buffers of the CUDA pipeline, kept from one frame to the next.

Only scratch whose use ends within a stage is pooled: tile binning's per-Gaussian counts and
offsets [N] and its unsorted and sorted keys, ids and sort order [M] (M = tile instances). Tensors
handed to the caller or saved for the backward pass (images, projected Gaussians, gaussian_ids,
tile_ranges, the blend's final T and counts) are new torch tensors every frame, so a frame never
overwrites another that is still in use; they come from torch's caching allocator, which after
the first frame of a size serves them without a cudaMalloc.

A buffer is keyed by (device, stream, thread, name): work queued on one stream runs in order, so
the next frame's use of a buffer cannot overtake the previous frame's, and two threads rendering
at once (the Slicer module's background renders and its GUI thread) never share one. It is
reused while it is large enough and replaced by one 25 % larger than asked when it is not (M
changes from view to view), so a frame the same size as the one before allocates nothing.
`clear()` releases them all.
"""

from __future__ import annotations

import threading

import torch

HEADROOM = 1.25  # capacity of a (re)allocated buffer, relative to the size asked


class BufferPool:
    """Reusable 1-D scratch tensors; `allocations` counts the tensors it has created."""

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}
        self._lock = threading.Lock()
        self.allocations = 0

    def get(self, name: str, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A contiguous [size] view of buffer `name` for `device`'s current stream (contents
        undefined)."""
        key = (device, _stream_key(device), threading.get_ident(), name, dtype)
        with self._lock:
            buffer = self._buffers.get(key)
            if buffer is None or buffer.numel() < size:
                buffer = torch.empty(int(size * HEADROOM) + 1, dtype=dtype, device=device)
                self._buffers[key] = buffer
                self.allocations += 1
        return buffer[:size]

    def clear(self) -> None:
        """Drop every buffer (their memory returns to torch's caching allocator)."""
        with self._lock:
            self._buffers.clear()


def _stream_key(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0


POOL = BufferPool()
