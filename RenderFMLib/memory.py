"""Memory a preparation needs, checked before the work, between slabs of priming and after
them: one clear refusal (MemoryNeedError) instead of an allocator traceback or the system's
out-of-memory killer.

Bytes per voxel and per Gaussian, measured on a 512 x 512 x 600 CT (157 M voxels,
Testing/bench/bench_memory.py): reading peaks at 1.26 GB (two copies of the CT), a preparation
with no segmentation at 2.65 GB with 3.8 M Gaussians, one with the threshold segmentation at
3.48 GB. Joining the slabs and copying out the fields (check_finish) costs 4 bytes per channel
and Gaussian for each copy of its channels (measured with getrusage on 2 M Gaussians when there
were 40 channels: 162 bytes for AGP's copy, 322 with a network's residual added first; now 49
channels, 196 bytes a copy). Free memory is the kernel's MemAvailable (Linux); where it is
unknown nothing is refused.
"""

from __future__ import annotations

from pathlib import Path

from .errors import RenderFMError

CT_BYTES = 8  # per voxel: float32 HU, and a second copy while reading or resampling
LABEL_BYTES = 8  # per voxel: int64 labels on the CT's grid
THRESHOLD_BYTES = 14  # per voxel: the threshold segmentation's masks and connected components
SLAB_BYTES_PER_VOXEL = 150  # priming's working set, per voxel of one slab
HEADROOM_BYTES = 300_000_000  # kept free for the Gaussians one slab adds and the rest
FINISH_BYTES = 432  # per Gaussian after priming: the slabs' channel tables joined (196), the
# fields copied out of them (196) and the means with their intermediates (40 allowed)
NETWORK_FINISH_BYTES = 588  # per Gaussian more with a network: its residuals joined, base +
# residual, and the copy made where group looks keep the colour (196 each)
WAY_OUT = "resample it coarser (--spacing 1.5; spacing_mm=1.5 in Python) or crop it"


class MemoryNeedError(RenderFMError):
    """A preparation would not fit in the memory this machine has free."""


def available_bytes() -> int | None:
    """Memory the kernel can give without swapping (MemAvailable), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_resampling(voxels: int) -> None:
    """MemoryNeedError when resampling the CT onto a grid of `voxels` voxels cannot fit."""
    _check(CT_BYTES * voxels, f"resampling this CT to {voxels / 1e6:,.0f} M voxels")


def check_preparation(voxels: int, segmentation: object, slab_voxels: int) -> None:
    """MemoryNeedError when preparing a CT of `voxels` voxels, already in memory, cannot fit:
    its labels (segmentation: prepare()'s argument), the threshold segmentation's masks, one
    slab of priming (slab_voxels voxels at most) and the headroom."""
    need = SLAB_BYTES_PER_VOXEL * min(voxels, slab_voxels) + HEADROOM_BYTES
    need += LABEL_BYTES * voxels if segmentation is not None else 0
    need += THRESHOLD_BYTES * voxels if segmentation == "threshold" else 0
    _check(need, f"preparing this CT ({voxels / 1e6:,.0f} M voxels)")


def check_headroom(slab_voxels: int, done: float, gaussians: int) -> None:
    """MemoryNeedError when the next slab of priming would leave too little memory free.

    done: fraction of the CT primed so far; gaussians: how many it has made.
    """
    free = available_bytes()
    need = SLAB_BYTES_PER_VOXEL * slab_voxels + HEADROOM_BYTES
    if free is not None and need > free:
        raise MemoryNeedError(f"memory ran short after priming {done:.0%} of the CT "
                              f"({gaussians:,} Gaussians so far, {_gb(free)} free): {WAY_OUT}")


def check_finish(gaussians: int, network: bool) -> None:
    """MemoryNeedError when joining the slabs' `gaussians` Gaussians (and a network's residuals
    of them) and copying out their fields would not fit: the step after priming, whose need
    grows with the Gaussians, not the slab."""
    need = (FINISH_BYTES + (NETWORK_FINISH_BYTES if network else 0)) * gaussians + HEADROOM_BYTES
    _check(need, f"finishing the {gaussians:,} Gaussians primed from this CT")


def _check(need: int, what: str) -> None:
    free = available_bytes()
    if free is not None and need > free:
        raise MemoryNeedError(f"{what} needs about {_gb(need)} of memory and {_gb(free)} is "
                              f"free: {WAY_OUT}")


def _gb(count: float) -> str:
    return f"{count / 1e9:.1f} GB"
