"""Damage in NIfTI files that SimpleITK reads without complaint, found before it reads them.

SimpleITK (ITK's NIfTI reader) fills the voxels missing from a truncated .nii or .nii.gz with 0
and turns NaN and infinite voxels into 0: both give a plausible-looking CT with a block of 0 HU
("soft tissue"). check_nifti reads the file once, in chunks of CHUNK_BYTES (bounded memory),
and compares the voxel bytes present with what the header describes (voxel offset + voxels x
bytes per voxel), and counts non-finite values in float images. Single-file NIfTI-1 ("n+1",
348-byte header) and NIfTI-2 ("n+2", 540-byte; SimpleITK 2.5 does not read these yet) are
checked; other files (.hdr/.img pairs, other formats) pass untouched.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import VolumeError

CHUNK_BYTES = 1 << 22  # bytes read (and decompressed) at a time
_GZIP_MAGIC = b"\x1f\x8b"
# NIfTI datatype code -> NumPy type (float types are the ones checked for NaN / infinity).
_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 32: "c8", 64: "f8", 128: "V3", 256: "i1",
           512: "u2", 768: "u4", 1024: "i8", 1280: "u8", 1792: "c16", 2304: "V4"}


@dataclass(frozen=True)
class _Header:
    """What the header says about the voxel data: where it starts, its size and type."""

    offset: int  # bytes from the file's start to the first voxel
    shape: tuple[int, ...]  # voxel counts, fastest axis first
    dtype: np.dtype

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def is_nifti(path: Path) -> bool:
    """Whether path is named as a NIfTI file (.nii or .nii.gz, any case)."""
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def check_nifti(path: Path) -> None:
    """VolumeError naming path when the NIfTI file holds fewer voxel bytes than its header
    describes (truncated) or NaN / infinite voxels; nothing for other or unparsable files (left to
    SimpleITK's own messages)."""
    if not is_nifti(path) or not path.is_file():
        return
    try:
        opened = _open(path)
    except OSError:  # unreadable: SimpleITK's message says so
        return
    with opened as stream:
        header = _read_header(stream)
        if header is None:
            return
        present, non_finite = _scan(stream, header, path)
    if present < header.data_bytes:
        raise VolumeError(_truncated_message(path, header, present))
    if non_finite:
        raise VolumeError(f"{path} contains {non_finite} non-finite (NaN or infinite) values")


def _open(path: Path) -> io.BufferedIOBase:
    """The file's decompressed bytes: through gzip when it starts with gzip's magic."""
    with open(path, "rb") as file:
        compressed = file.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_header(stream: io.BufferedIOBase) -> _Header | None:
    """The header of a single-file NIfTI-1 or NIfTI-2 image, the stream left after it; None when
    the header is not one (SimpleITK then says what is wrong)."""
    try:
        start = stream.read(4)
        for order in "<>":
            size = struct.unpack(order + "i", start)[0] if len(start) == 4 else 0
            if size in (348, 540):
                start += stream.read(size - 4)
                if len(start) < size:
                    return None
                return _nifti1(start, order) if size == 348 else _nifti2(start, order)
    except (OSError, EOFError, zlib.error):
        pass
    return None


def _nifti1(start: bytes, order: str) -> _Header | None:
    if start[344:348] != b"n+1\x00":
        return None
    dims = struct.unpack(order + "8h", start[40:56])
    datatype = struct.unpack(order + "h", start[70:72])[0]
    offset = struct.unpack(order + "f", start[108:112])[0]
    return _header(dims, datatype, offset, order)


def _nifti2(start: bytes, order: str) -> _Header | None:
    if start[4:8] != b"n+2\x00":
        return None
    datatype = struct.unpack(order + "h", start[12:14])[0]
    dims = struct.unpack(order + "8q", start[16:80])
    offset = struct.unpack(order + "q", start[168:176])[0]
    return _header(dims, datatype, offset, order)


def _header(dims: tuple, datatype: int, offset: float, order: str) -> _Header | None:
    """A _Header when the fields make sense; None for ones SimpleITK will refuse anyway."""
    rank = dims[0]
    if not 1 <= rank <= 7 or any(n < 1 for n in dims[1:rank + 1]) or datatype not in _DTYPES:
        return None
    if not math.isfinite(offset) or offset < 348:  # 0: a .hdr / .img pair, not checked
        return None
    dtype = np.dtype(order + _DTYPES[datatype])
    return _Header(int(offset), tuple(int(n) for n in dims[1:rank + 1]), dtype)


def _scan(stream: io.BufferedIOBase, header: _Header, path: Path) -> tuple[int, int]:
    """(voxel bytes present, non-finite values among them), reading to the stream's end so that
    gzip checks its length and CRC; VolumeError when the compressed data is damaged."""
    present = non_finite = 0
    pending = bytearray()  # float voxel bytes read but not yet looked at
    floats = header.dtype.kind in "fc"
    try:
        extensions = header.offset - stream.tell()
        if _skip(stream, extensions) < extensions:
            return 0, 0  # the file ends within the header's extensions
        while present < header.data_bytes:
            part = stream.read1(min(CHUNK_BYTES, header.data_bytes - present))
            if not part:
                break
            present += len(part)
            if floats:
                pending += part
            if len(pending) >= CHUNK_BYTES:
                non_finite += _count_non_finite(pending, header.dtype)
        while stream.read(CHUNK_BYTES):  # the rest (extensions, gzip's length and CRC)
            pass
    except EOFError:  # gzip: the compressed stream ends before its end-of-stream marker
        if present >= header.data_bytes:
            raise VolumeError(f"{path} is truncated (its compressed data ends early)") from None
    except (OSError, zlib.error) as error:
        raise VolumeError(f"{path} is damaged: its compressed data cannot be read ({error})") \
            from None
    return present, non_finite + _count_non_finite(pending, header.dtype)


def _skip(stream: io.BufferedIOBase, count: int) -> int:
    """Read and drop count bytes (the header's extensions); how many there were."""
    skipped = 0
    while skipped < count:
        part = stream.read(min(CHUNK_BYTES, count - skipped))
        if not part:
            break
        skipped += len(part)
    return skipped


def _count_non_finite(pending: bytearray, dtype: np.dtype) -> int:
    """NaN and infinite values among the whole values (of float dtype) at the start of pending,
    which are then removed from it."""
    usable = len(pending) // dtype.itemsize * dtype.itemsize
    if not usable:
        return 0
    values = np.frombuffer(pending, dtype=dtype, count=usable // dtype.itemsize)
    count = values.size - int(np.count_nonzero(np.isfinite(values)))
    del values  # a view on pending: released before pending shrinks
    del pending[:usable]
    return count


def _truncated_message(path: Path, header: _Header, present: int) -> str:
    shape = "x".join(str(n) for n in header.shape)
    percent = math.floor(1000.0 * present / header.data_bytes) / 10.0
    return (f"{path} is truncated: its header describes {shape} voxels of "
            f"{header.dtype.name} ({header.data_bytes} bytes) but the file holds {present} "
            f"({percent:.1f}%); the download or copy was cut short")
