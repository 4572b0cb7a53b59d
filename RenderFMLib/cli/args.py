"""Argument types, output checks and the progress bar shared by the `renderfm` commands."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RenderFMError
from ..files import is_special

if TYPE_CHECKING:  # crop.py imports torch: the command reads it when --crop is given
    from ..crop import CropBox

MODEL_SUFFIX = ".safetensors"
INTERRUPTED = 130  # exit status after Ctrl-C, as the shell gives
INPUT_OPTIONS = ("input", "seg", "ct", "camera", "preset", "presets", "scans", "scans_file",
                 "target", "manifest", "config", "weights", "model", "crop")
"""The arguments (argparse dests) that may name input files or folders, in any command."""


class UsageError(RenderFMError):
    """A bad command line argument (wrong output type, missing folder...)."""


def interrupted() -> int:
    """Say on stderr that Ctrl-C stopped the command; returns the exit status for it."""
    print("renderfm: interrupted", file=sys.stderr)
    return INTERRUPTED


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float, str], None]]:
    """A tqdm bar on stderr driven by api progress callbacks (fraction, message); it is gone
    when the block ends, so messages printed after it start on their own line."""
    from tqdm import tqdm

    bar = tqdm(total=100, leave=False, file=sys.stderr,
               bar_format="{desc:<48} {percentage:3.0f}%|{bar}|")

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_description_str(f"{description}: {message}")

    try:
        yield update
    finally:
        bar.close()


def output_file(path: str, suffix: str, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Checked output path, before any work: the right suffix, a writable folder, not a folder,
    not a symlink (it could point at anything) and not one of the command's input files."""
    out = Path(path)
    if out.suffix.lower() != suffix:
        raise UsageError(f"output {out} must end in {suffix}")
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist")
    if out.is_symlink():
        raise UsageError(f"output {out} is a symbolic link; give the path of a plain file")
    if out.is_dir():
        raise UsageError(f"output {out} is a folder")
    for source in inputs:
        if source is not None and out.exists() and _same_file(out, Path(source)):
            raise UsageError(f"output {out} is the input {source}; give another output name")
    _check_writable(out.parent)
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # b is not a file (a preset name, "threshold"...)
        return False


def _check_writable(folder: Path) -> None:
    """UsageError unless files can be made in folder (or, if it is missing, in the nearest
    folder above it that exists)."""
    existing = next(parent for parent in (folder, *folder.absolute().parents) if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {existing} is not writable")


def input_paths(args: argparse.Namespace) -> list[str]:
    """The values of the command's INPUT_OPTIONS that were given (some are not paths: a preset
    name, "threshold", "dvr")."""
    values: list[str] = []
    for name in INPUT_OPTIONS:
        value = getattr(args, name, None)
        values += value if isinstance(value, list) else [] if value is None else [value]
    return [str(value) for value in values]


def check_inputs(paths: Iterable[str | Path | None]) -> None:
    """UsageError for an input that exists but is neither a regular file nor a folder (a FIFO,
    a device): reading it could wait for ever."""
    for path in paths:
        if path is not None and is_special(path):
            raise UsageError(f"input {path} is not a regular file or a folder (a pipe or a "
                             "device?); give a file or a DICOM folder")


def is_model(path: str | Path) -> bool:
    """True for a prepared model file (MODEL_SUFFIX), False for a CT."""
    return Path(path).suffix.lower() == MODEL_SUFFIX


def refuse_for_model(options: dict[str, object]) -> None:
    """UsageError naming the CT-only options (flag: value) given, i.e. not None, with a model."""
    given = [flag for flag, value in options.items() if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: only for a CT, not for a prepared model")


def output_folder(path: str, create: bool = True) -> Path:
    """A folder for outputs, created if missing (unless create is False); a file there is a
    UsageError."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"output {folder} is a file; give a folder")
    _check_writable(folder)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def names(text: str) -> list[str]:
    """Comma-separated names, at least one."""
    found = [name.strip() for name in text.split(",") if name.strip()]
    if not found:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, not {text!r}")
    return found


def background_rgb(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"background must be R,G,B in 0..1, not {text!r}") from None
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"background must be R,G,B in 0..1, not {text!r}")
    return values


def image_side(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be a whole number of pixels, not {text!r}") from None
    if not 16 <= size <= 8192:
        raise argparse.ArgumentTypeError(f"size must be 16..8192 pixels, not {size}")
    return size


def positive(text: str) -> int:
    """A whole number, at least 1."""
    return _at_least(text, 1)


def non_negative(text: str) -> int:
    """A whole number, at least 0."""
    return _at_least(text, 0)


def _at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected at least {least}, not {value}")
    return value


def degrees(text: str) -> float:
    """An angle in degrees: a finite number."""
    return _finite(text, "degrees")


def hounsfield(text: str) -> float:
    """An offset in HU: a finite number."""
    return _finite(text, "HU")


def millimetres(text: str) -> float:
    """A length in mm, above 0."""
    return _above_zero(text, "mm")


def seconds(text: str) -> float:
    """A duration in seconds, above 0."""
    return _above_zero(text, "seconds")


def _above_zero(text: str, unit: str) -> float:
    value = _finite(text, unit)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of {unit} above 0, not {text!r}")
    return value


def _finite(text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of {unit}, not {text!r}")
    return value


CROP_FORMS = "R_MIN,R_MAX,A_MIN,A_MAX,S_MIN,S_MAX (RAS mm) or a Slicer ROI file (.mrk.json)"


def crop_option(text: str | None) -> CropBox | None:
    """--crop as a box: six comma-separated bounds or a Slicer markups ROI file; read before any
    heavy work (RenderFMError saying what is wrong, one line)."""
    from ..crop import crop_box
    from ..roi_file import read_roi_file

    if text is None:
        return None
    if "," not in text:
        return read_roi_file(text)
    parts = text.split(",")
    try:
        bounds = [float(part) for part in parts]
    except ValueError:
        bounds = []
    if len(bounds) != 6:
        raise UsageError(f"--crop must be {CROP_FORMS}, not {text!r}")
    return crop_box("--crop", "the box", bounds)


def angles(text: str) -> list[float]:
    """Comma-separated degrees, at least one."""
    try:
        found = [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        found = []
    if not found or not all(math.isfinite(value) for value in found):
        raise argparse.ArgumentTypeError(f"expected degrees like 0,30,-30, not {text!r}")
    return found


def add_weights(parser: argparse.ArgumentParser) -> None:
    """--weights: the network that refines AGP when preparing."""
    parser.add_argument("--weights", metavar="shipped|none|FILE",
                        help="the network's weights: shipped (the bundled ones, the default), "
                             "none (AGP alone) or a .safetensors file from `renderfm train` "
                             "(with its .json beside it)")


def weights_argument(value: str | None) -> str:
    """prepare()'s weights for a --weights value (None: not given, the shipped ones)."""
    return "shipped" if value is None else value
