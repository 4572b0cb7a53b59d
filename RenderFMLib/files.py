"""Output files written whole or not at all, and input paths that can be read without hanging.

write_atomic fills a hidden temporary file in the output's folder and renames it into place
(os.replace, atomic on one file system): a failed write (disk full, quota, Ctrl-C, an exception)
leaves a file already there byte-identical and no partial file behind. No torch here: the CLI
checks paths with it before importing the heavy modules.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
"""The suffix of the temporary files, named .NAME.XXXXXXXX.partial (hidden: a leading dot)."""


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write `path` with write(temporary path), then rename the temporary file to `path`.

    write must not infer the file format from the name it gets (it ends in .partial). The new
    file keeps the permissions of the one it replaces; a symlink at `path` is replaced, not
    followed. An OSError (no space, quota, no permission) names `path`, not the temporary file;
    on any exception the temporary file is removed. Returns `path`.
    """
    path = Path(path)
    partial = _create_partial(path)
    try:
        with _naming(path, partial):
            mode = _mode(path, partial)
            write(partial)
            os.chmod(partial, mode)  # a writer may have replaced partial (safetensors does)
            _flush_to_disk(partial)
            os.replace(partial, path)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return path


def _create_partial(path: Path) -> Path:
    """A new empty temporary file beside path (permissions as the umask gives)."""
    while True:
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
        try:
            with _naming(path, partial):
                os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # 32 random bits taken: draw again
            continue
        return partial


def _mode(path: Path, partial: Path) -> int:
    """The permissions of the new file: those of the file it replaces, else those the umask
    gave the new empty partial."""
    source = path if path.is_file() and not path.is_symlink() else partial
    return stat.S_IMODE(os.stat(source).st_mode)


def _flush_to_disk(path: Path) -> None:
    """fsync path, so that the rename never publishes a file whose data is not yet written."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _naming(path: Path, partial: Path) -> Iterator[None]:
    """An OSError in the block that names the temporary file, or no file, names path instead
    (of the same OSError subclass, e.g. FileExistsError, since the errno picks it)."""
    try:
        yield
    except OSError as error:
        if error.filename is not None and os.fspath(error.filename) != str(partial):
            raise
        if error.errno is None:
            raise OSError(f"{path}: {error}") from error
        raise OSError(error.errno, error.strerror, str(path)) from error


def is_special(path: str | Path) -> bool:
    """True for what exists but is neither a regular file nor a folder (a FIFO, a socket, a
    device such as /dev/stdin), where reading could block for ever; False for regular files,
    folders and missing paths (their readers say they do not exist). Symlinks are followed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
