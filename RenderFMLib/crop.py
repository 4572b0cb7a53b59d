"""CropBox: a region of interest in patient RAS millimetres, as Slicer's markups ROI holds it.

A box has a centre, edge lengths along its own three axes and those axes as RAS unit vectors
(identity: axis-aligned; a rotation, as an ROI turned with its handles). render(crop=...) keeps
what lies inside it (render/clip.py clips the Gaussians at its six faces). crop_box() turns what
a caller gives (a CropBox or six bounds R_MIN, R_MAX, A_MIN, A_MAX, S_MIN, S_MAX) into a checked
box; roi_file.py reads one from a Slicer markups ROI file (.mrk.json).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import arguments as check
from .camera import Camera
from .errors import ArgumentError, ArgumentTypeError
from .gaussians import SixDGaussians
from .render.clip import clip_to_planes
from .render.reference import slice_gaussians

AXES = ("R", "A", "S")
ORTHONORMAL_TOLERANCE = 1e-4
"""How far axes^T axes may be from the identity (Slicer writes its orientation to 16 digits)."""


@dataclass(frozen=True)
class CropBox:
    """A box: center [3] RAS mm; size [3] mm, its edge lengths along its own axes (>= 0);
    axes [3, 3], columns the box's axes as RAS unit vectors (a rotation; identity by default).
    Build it with crop_box() or from_bounds() to have it checked."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                                                    (0.0, 0.0, 1.0))

    @classmethod
    def from_bounds(cls, bounds: Iterable[float]) -> CropBox:
        """The axis-aligned box R_MIN, R_MAX, A_MIN, A_MAX, S_MIN, S_MAX (RAS mm)."""
        return crop_box("CropBox.from_bounds", "bounds", bounds)

    def planes(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        """(normals [6, 3], offsets [6]): a point x (RAS mm) is inside when normal . x <= offset
        for all six faces; normals are unit and point out of the box."""
        axes = np.asarray(self.axes, dtype=np.float64)
        centre, half = np.asarray(self.center), 0.5 * np.asarray(self.size)
        normals = np.concatenate([axes.T, -axes.T])  # +x, +y, +z faces, then -x, -y, -z
        offsets = normals @ centre + np.concatenate([half, half])
        return (torch.as_tensor(normals, dtype=dtype, device=device),
                torch.as_tensor(offsets, dtype=dtype, device=device))

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Whether each point [N, 3] (RAS mm) lies inside the box (faces included): [N] bool."""
        local = (np.asarray(points, dtype=np.float64) - np.asarray(self.center)) @ \
            np.asarray(self.axes)
        return np.all(np.abs(local) <= 0.5 * np.asarray(self.size) + 1e-9, axis=-1)

    def corners(self) -> np.ndarray:
        """The 8 corners [8, 3] RAS mm."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
        return np.asarray(self.center) + (signs * 0.5 * np.asarray(self.size)) @ \
            np.asarray(self.axes).T

    def screen_mask(self, camera: Camera, width: int, height: int) -> np.ndarray:
        """[height, width] bool: the pixels whose centres see the box (the convex hull of its
        projected corners); all pixels when the camera is inside it or a corner is behind the
        camera."""
        corners = np.c_[self.corners(), np.ones(8)] @ camera.world_to_camera().T
        if (corners[:, 2] <= 0).any():
            return np.ones((height, width), dtype=bool)
        pixels = (corners[:, :3] / corners[:, 2:3]) @ camera.intrinsics(width, height).T
        hull = _convex_hull([tuple(p) for p in (pixels[:, :2] - 0.5).tolist()])
        image = Image.new("1", (width, height), 0)
        ImageDraw.Draw(image).polygon(hull, fill=1)
        return np.array(image, dtype=bool)


_BOUNDS = "a CropBox or 6 numbers R_MIN, R_MAX, A_MIN, A_MAX, S_MIN, S_MAX (RAS mm)"


def crop_box(function: str, name: str, value: object) -> CropBox:
    """value as a checked CropBox: a CropBox, or six bounds (RAS mm, each minimum <= maximum).
    ArgumentTypeError / ArgumentError naming function and name otherwise."""
    if isinstance(value, CropBox):
        return checked_box(function, name, value.center, value.size, value.axes)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{function}: {name} must be {_BOUNDS}, not "
                                f"{check.describe(value)}")
    items = list(value)
    if len(items) != 6 or not all(check.is_number(item) for item in items):
        raise ArgumentTypeError(f"{function}: {name} must be {_BOUNDS}, not "
                                f"{check.describe(value)}")
    bounds = [float(item) for item in items]
    for axis, low, high in zip(AXES, bounds[0::2], bounds[1::2]):
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ArgumentError(f"{function}: {name} must hold finite numbers of mm, not "
                                f"{axis}_MIN {low:g}, {axis}_MAX {high:g}")
        if low > high:
            raise ArgumentError(f"{function}: {name} is inverted: {axis}_MIN {low:g} is above "
                                f"{axis}_MAX {high:g}")
    lows, highs = np.array(bounds[0::2]), np.array(bounds[1::2])
    return checked_box(function, name, 0.5 * (lows + highs), highs - lows, np.eye(3))


def checked_box(function: str, name: str, center: object, size: object,
                axes: object) -> CropBox:
    """A CropBox from centre (RAS mm), size (mm, >= 0) and axes (3x3 rotation, columns the box's
    axes in RAS), each checked: finite, of that shape, sizes not negative, axes orthonormal and
    right-handed. ArgumentError naming function and name otherwise."""
    try:
        centre_array = np.asarray(center, dtype=np.float64)
        size_array = np.asarray(size, dtype=np.float64)
        axes_array = np.asarray(axes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{function}: {name} needs numbers for its centre, size and "
                                "axes") from None
    if centre_array.shape != (3,) or size_array.shape != (3,) or axes_array.shape != (3, 3):
        raise ArgumentError(f"{function}: {name} needs a centre of 3 numbers, a size of 3 and "
                            "3x3 axes")
    if not all(np.isfinite(a).all() for a in (centre_array, size_array, axes_array)):
        raise ArgumentError(f"{function}: {name} must hold finite numbers (mm), not NaN or "
                            "infinity")
    if (size_array < 0).any():
        raise ArgumentError(f"{function}: {name} has a negative size {size_array.tolist()} mm")
    if np.abs(axes_array.T @ axes_array - np.eye(3)).max() > ORTHONORMAL_TOLERANCE or \
            np.linalg.det(axes_array) < 0:
        raise ArgumentError(f"{function}: {name}'s axes must be a rotation (orthonormal, "
                            "right-handed)")
    return CropBox(tuple(centre_array.tolist()), tuple(size_array.tolist()),
                   tuple(tuple(row) for row in axes_array.tolist()))


def _convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of 2D points, counter-clockwise (Andrew's monotone chain)."""
    points = sorted(set(points))

    def half(sequence: list[tuple[float, float]]) -> list[tuple[float, float]]:
        chain: list[tuple[float, float]] = []
        for p in sequence:
            while len(chain) >= 2 and (chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1]) - \
                    (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0]) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return half(points) + half(points[::-1])


def clipped_splats(gaussians: SixDGaussians, box: CropBox, camera_centre: torch.Tensor
                   ) -> tuple[torch.Tensor, ...]:
    """The renderers' per-Gaussian inputs (means, dir_means, s_c, gains, s_dd_inv,
    opacity_logits, rgb, sh, specular_sh) for the part of gaussians inside box, seen from
    camera_centre [3] RAS mm: Gaussians outside left out, those a face cuts clipped
    (render/clip.py). The clip acts on the means as sliced for this camera (mu_p + K delta,
    DESIGN.md section 4), and moves mu_p by what it moved them."""
    s_c, gains, s_dd_inv = gaussians.derived()
    sliced, _ = slice_gaussians(gaussians.means, gaussians.dir_means, gains, s_dd_inv,
                                gaussians.opacity_logits, camera_centre)
    normals, offsets = box.planes(gaussians.device, gaussians.means.dtype)
    kept, clipped, s_c, logits = clip_to_planes(sliced, s_c, gaussians.opacity_logits,
                                                normals, offsets, camera_centre)
    if clipped is sliced:  # the box holds every Gaussian whole
        return (gaussians.means, gaussians.dir_means, s_c, gains, s_dd_inv, logits,
                gaussians.rgb, gaussians.sh, gaussians.specular_sh)
    means = gaussians.means[kept] + (clipped - sliced[kept])
    return (means, gaussians.dir_means[kept], s_c, gains[kept], s_dd_inv[kept], logits,
            gaussians.rgb[kept], gaussians.sh[kept], gaussians.specular_sh[kept])
