"""Checks of the public API's arguments (api.prepare, api.render, api.shown, SixDGaussians.load).

A wrong type raises ArgumentTypeError (a TypeError), a value out of range ArgumentError (a
ValueError); both are RenderFMErrors, so front ends show them as one line. Each message names the
function, the argument and what it accepts, instead of a pathlib, NumPy or torch exception from
deep inside. NumPy numbers count as numbers; bool and str never do.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from os import PathLike
from typing import cast

from .errors import ArgumentError, ArgumentTypeError
from .frame import MAX_IMAGE_SIDE


def describe(value: object) -> str:
    """A short account of value for a message: its repr for plain values, else its type."""
    if value is None or isinstance(value, (bool, numbers.Number, str, bytes, list, tuple, set)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__.split('.')[0]}.{kind.__qualname__}"
    shape = getattr(value, "shape", None)
    return f"a {name}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def path(function: str, name: str, value: object, accepted: str) -> None:
    """ArgumentTypeError unless value is a str or os.PathLike; ArgumentError for an empty str
    (which Path would read as the working folder). accepted: what the message offers instead."""
    if not isinstance(value, (str, PathLike)):
        raise ArgumentTypeError(f"{function}: {name} must be {accepted}, not {describe(value)}")
    if str(value).strip() == "":
        raise ArgumentError(f"{function}: {name} is an empty path; give {accepted}")


def is_integer(value: object) -> bool:
    """Whether value is an int (or a NumPy integer), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Whether value is an int or float (NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def image_size(function: str, size: object) -> tuple[int, int]:
    """(width, height) in pixels from a side or a (width, height) pair of integers, each
    1..MAX_IMAGE_SIDE."""
    pair = list(size) if isinstance(size, (tuple, list)) else [size, size]
    if len(pair) != 2 or not all(is_integer(side) for side in pair):
        raise ArgumentTypeError(f"{function}: size must be an integer number of pixels or a "
                                f"(width, height) pair of them, not {describe(size)}")
    width, height = (int(cast(numbers.Integral, side)) for side in pair)
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise ArgumentError(f"{function}: image size must be 1..{MAX_IMAGE_SIDE} pixels, not "
                            f"{width}x{height}")
    return width, height


def rgb(function: str, name: str, value: object) -> tuple[float, float, float]:
    """3 numbers in [0, 1] (red, green, blue)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{function}: {name} must be 3 numbers in 0..1 (red, green, "
                                f"blue), not {describe(value)}")
    items = list(value)
    if len(items) != 3 or not all(is_number(item) for item in items):
        raise ArgumentTypeError(f"{function}: {name} must be 3 numbers in 0..1 (red, green, "
                                f"blue), not {describe(value)}")
    red, green, blue = (float(cast(numbers.Real, item)) for item in items)
    if not all(0.0 <= channel <= 1.0 for channel in (red, green, blue)):
        raise ArgumentError(f"{function}: {name} must be 3 numbers in 0..1 (red, green, blue), "
                            f"not {(red, green, blue)}")
    return red, green, blue


def group_names(function: str, name: str, value: object) -> list[str]:
    """Anatomical group names: one name (a str) or an iterable of names."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        names = list(value)
        if all(isinstance(item, str) for item in names):
            return names
    raise ArgumentTypeError(f"{function}: {name} must be a group name or a list of them (str, "
                            f"e.g. ['skeleton']), not {describe(value)}")


def labels(function: str, name: str, value: object) -> list[int]:
    """Segmentation labels: one integer >= 0 or an iterable of them."""
    items = [value] if is_integer(value) else \
        list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else None
    if items is None or not all(is_integer(item) for item in items):
        raise ArgumentTypeError(f"{function}: {name} must be a label or a list of labels "
                                f"(integers >= 0), not {describe(value)}")
    values = [int(cast(numbers.Integral, item)) for item in items]
    if any(label < 0 for label in values):
        raise ArgumentError(f"{function}: {name} must hold labels >= 0, not {min(values)}")
    return values


def number(function: str, name: str, value: object, accepted: str,
           positive: bool = False) -> float:
    """A finite number (> 0 when positive); accepted says what it means (units)."""
    if not is_number(value):
        raise ArgumentTypeError(f"{function}: {name} must be {accepted}, not {describe(value)}")
    result = float(cast(numbers.Real, value))
    if not math.isfinite(result) or (positive and result <= 0):
        raise ArgumentError(f"{function}: {name} must be {accepted}, not {result:g}")
    return result


def flag(function: str, name: str, value: object) -> bool:
    """True or False (NumPy's bool too), not a truthy string such as "no"."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ArgumentTypeError(f"{function}: {name} must be True or False, not "
                                f"{describe(value)}")
    return bool(value)


def instance(function: str, name: str, value: object, kind: type, accepted: str) -> None:
    """ArgumentTypeError unless value is a kind."""
    if not isinstance(value, kind):
        raise ArgumentTypeError(f"{function}: {name} must be {accepted}, not {describe(value)}")
