"""Cameras: VTK/Slicer camera terms <-> the rasterizer's pinhole model, and orbits.

World coordinates are patient RAS millimetres. A camera is given as VTK and Slicer give it:
position, focal point, view up (RAS mm) and the vertical view angle (degrees). The rasterizer uses
the OpenCV pinhole convention (DESIGN.md section 2): x right, y down, z forward, with
world_to_camera = diag(1, -1, -1, 1) @ V, where V is VTK's view transform (world -> eye, eye looks
down -z), fx = fy = (H / 2) / tan(view_angle / 2), cx = W / 2, cy = H / 2; pixel (u, v) has its
centre at (u + 0.5, v + 0.5).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import CameraError

_VTK_EYE_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


MIN_VIEW_ANGLE, MAX_VIEW_ANGLE = 0.1, 179.0  # degrees, both excluded: beyond is no usable view
MAX_COORDINATE_MM = 1e6  # a camera (and what it looks at) within 1 km of the RAS origin
_MIN_SINE = 1e-6  # view up closer than this (sine of the angle) to the view direction: parallel
_ACCEPTED = "position, focal_point and view_up take 3 numbers each, RAS mm; view_angle one, degrees"


@dataclass(frozen=True)
class Camera:
    """A perspective camera in VTK terms, RAS millimetres and degrees.

    position, focal_point: 3 finite numbers each (RAS mm) within MAX_COORDINATE_MM of the origin,
    apart; view_up: 3 numbers (a direction, any length) not parallel to the view direction;
    view_angle: the vertical view angle, degrees, strictly between MIN_VIEW_ANGLE and
    MAX_VIEW_ANGLE. Numbers are int or float (NumPy's too), never bool or str; they are stored as
    tuples of float. CameraError names the term that is wrong.
    """

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    view_up: tuple[float, float, float]
    view_angle: float = 30.0

    def __post_init__(self) -> None:
        position, focal_point = _point("position", self.position), \
            _point("focal_point", self.focal_point)
        view_up, view_angle = _point("view_up", self.view_up), \
            _number("view_angle", self.view_angle)
        _check_geometry(position, focal_point, view_up, view_angle)
        for name, value in (("position", position), ("focal_point", focal_point),
                            ("view_up", view_up), ("view_angle", view_angle)):
            object.__setattr__(self, name, value)  # as floats

    def view_matrix(self) -> np.ndarray:
        """VTK's view transform [4, 4]: RAS mm -> eye (x right, y up, looking down -z)."""
        position = np.asarray(self.position, dtype=np.float64)
        backward = position - np.asarray(self.focal_point, dtype=np.float64)
        backward /= np.linalg.norm(backward)
        right = np.cross(np.asarray(self.view_up, dtype=np.float64), backward)
        right /= np.linalg.norm(right)
        up = np.cross(backward, right)
        view = np.eye(4)
        view[:3, :3] = np.stack([right, up, backward])
        view[:3, 3] = -view[:3, :3] @ position
        return view

    def world_to_camera(self) -> np.ndarray:
        """OpenCV extrinsics [4, 4]: RAS mm -> camera mm (x right, y down, z forward)."""
        return _VTK_EYE_TO_OPENCV @ self.view_matrix()

    def intrinsics(self, width: int, height: int) -> np.ndarray:
        """Pinhole matrix [3, 3] in pixels for an image of width x height."""
        focal = (height / 2.0) / math.tan(math.radians(self.view_angle) / 2.0)
        return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])

    def to_dict(self) -> dict:
        """The CAMERA.json terms: position, focal_point, view_up (RAS mm), view_angle (degrees)."""
        return {
            "position": list(map(float, self.position)),
            "focal_point": list(map(float, self.focal_point)),
            "view_up": list(map(float, self.view_up)),
            "view_angle": float(self.view_angle),
        }

    @classmethod
    def from_dict(cls, terms: Mapping) -> Camera:
        """Inverse of to_dict; view_angle defaults to VTK's 30 degrees. CameraError naming the
        term that is missing or wrong (JSON true is not a number, nor is "30")."""
        if not isinstance(terms, Mapping):
            raise CameraError("camera terms must be a dict of position, focal_point, view_up "
                              f"and view_angle, not {type(terms).__name__}")
        try:
            return cls(terms["position"], terms["focal_point"], terms["view_up"],
                       terms.get("view_angle", 30.0))
        except KeyError as missing:
            raise CameraError(f"camera is missing {missing}") from None


def _number(name: str, value: object) -> float:
    """value as a finite float; CameraError naming the term unless an int or float (not bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CameraError(f"camera terms must be numbers: {name} is {value!r} ({_ACCEPTED})")
    if not math.isfinite(value):
        raise CameraError(f"camera {name} must be finite, not {value!r}")
    return float(value)


def _check_geometry(position: tuple, focal_point: tuple, view_up: tuple,
                    view_angle: float) -> None:
    """CameraError unless the camera is near the scan, sees a view and knows where up is."""
    for name, point in (("position", position), ("focal_point", focal_point)):
        if max(map(abs, point)) > MAX_COORDINATE_MM:
            raise CameraError(f"camera {name} {list(point)} lies more than "
                              f"{MAX_COORDINATE_MM:g} mm (1 km) from the RAS origin; "
                              "put the camera near the scan")
    _check_view_angle(view_angle)
    forward = np.subtract(focal_point, position)
    if np.linalg.norm(forward) < 1e-9:
        raise CameraError("camera position and focal point coincide")
    lengths = np.linalg.norm(forward) * np.linalg.norm(view_up)
    if lengths == 0 or np.linalg.norm(np.cross(forward, view_up)) < _MIN_SINE * lengths:
        raise CameraError("camera view up is zero or parallel to the viewing direction")


def _check_view_angle(view_angle: float) -> None:
    if not MIN_VIEW_ANGLE < view_angle < MAX_VIEW_ANGLE:
        raise CameraError(f"camera view angle must be between {MIN_VIEW_ANGLE:g} and "
                          f"{MAX_VIEW_ANGLE:g} degrees, not {view_angle:g}")


def _point(name: str, values: object) -> tuple[float, float, float]:
    """values as 3 finite floats; CameraError naming the term otherwise."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise CameraError(f"camera terms must be numbers: {name} is {values!r} ({_ACCEPTED})")
    items = list(values)
    if len(items) != 3:
        raise CameraError(f"camera {name} must be 3 numbers (RAS mm), not {len(items)}: {items}")
    x, y, z = (_number(name, item) for item in items)
    return x, y, z


def read_camera_json(path: str | Path) -> Camera:
    """Read CAMERA.json (see Camera.to_dict), e.g. written from Slicer's 3D view camera."""
    path = Path(path)
    try:
        terms = json.loads(path.read_text())
    except FileNotFoundError:
        raise CameraError(f"camera file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CameraError(f"camera file {path} is not valid JSON ({error})") from None
    if not isinstance(terms, dict):
        raise CameraError(f"camera file {path} must hold a JSON object")
    try:
        return Camera.from_dict(terms)
    except CameraError as error:
        raise CameraError(f"camera file {path}: {error}") from None


def orbit_camera(
    center: np.ndarray, radius: float, azimuth: float, elevation: float, view_angle: float = 30.0
) -> Camera:
    """A camera on a sphere around `center` (RAS mm) that frames a sphere of `radius` mm.

    azimuth 0, elevation 0 is the anterior view (patient's right on screen left, superior up);
    azimuth 90 looks from the patient's left, 180 from posterior, 270 from the right; positive
    elevation looks down from superior. Angles in degrees; CameraError naming a term that is not a
    finite number (or a view angle out of range) before any arithmetic.
    """
    if not (radius > 0 and math.isfinite(radius)):
        raise CameraError(f"orbit radius must be positive, not {radius}")
    for name, value in (("azimuth", azimuth), ("elevation", elevation)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value):
            raise CameraError(f"orbit {name} must be a finite number of degrees, not {value!r}")
    _check_view_angle(_number("view_angle", view_angle))  # before dividing by its sine
    az, el = math.radians(azimuth), math.radians(elevation)
    direction = np.array([-math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
    # d(direction)/d(elevation): perpendicular to the view at every elevation, superior-ish.
    up = np.array([math.sin(az) * math.sin(el), -math.cos(az) * math.sin(el), math.cos(el)])
    distance = radius / math.sin(math.radians(view_angle) / 2.0)
    center = np.asarray(center, dtype=np.float64)
    return Camera(tuple(center + distance * direction), tuple(center), tuple(up), view_angle)


def orbit(
    center: np.ndarray, radius: float, views: int, elevation: float = 0.0, view_angle: float = 30.0
) -> list[Camera]:
    """`views` cameras evenly spaced in azimuth, starting from the anterior view."""
    return [
        orbit_camera(center, radius, 360.0 * i / views, elevation, view_angle) for i in range(views)
    ]


def camera_tensors(
    camera: Camera, width: int, height: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(world_to_camera [4, 4], intrinsics [3, 3], centre [3] RAS mm) as tensors for rendering."""
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return (
        as_tensor(camera.world_to_camera()),
        as_tensor(camera.intrinsics(width, height)),
        as_tensor(camera.position),
    )
