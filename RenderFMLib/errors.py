"""The exceptions and warnings a user of RenderFM sees.

Every problem the user can fix (a bad file, an unknown preset, a camera inside out) raises a
subclass of RenderFMError whose message is one self-contained sentence: the CLI prints it on one
line and exits non-zero, the Slicer module shows it in its status line.
"""


class RenderFMError(Exception):
    """Base of all user-facing errors."""


class VolumeError(RenderFMError):
    """A CT or segmentation that cannot be used (unreadable, wrong dimension, no overlap...)."""


class PresetError(RenderFMError):
    """An unknown or malformed transfer-function preset."""


class CameraError(RenderFMError):
    """A camera that cannot be used (focal point at the position, view up along the view...)."""


class ModelFileError(RenderFMError):
    """A saved SixDGaussians file that cannot be read."""


class WeightsError(RenderFMError):
    """Network weights that cannot be used (missing, damaged, or made for another network)."""


class SegmentationError(RenderFMError):
    """A segmentation that cannot be read or run (unknown class, missing TotalSegmentator...)."""


class ArgumentError(RenderFMError, ValueError):
    """An argument of a public function (prepare, render, Camera...) out of its range; the message
    names the argument and what it accepts."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of a public function of the wrong type (a NumPy array for a path, None for a
    camera...); the message names the argument and what it accepts."""


class RenderFMWarning(UserWarning):
    """Something suspicious but usable, e.g. CT values that do not look like HU."""
