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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import CameraError

_VTK_EYE_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Camera:
    """A perspective camera in VTK terms, RAS millimetres and degrees."""

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    view_up: tuple[float, float, float]
    view_angle: float = 30.0

    def __post_init__(self) -> None:
        values = [*self.position, *self.focal_point, *self.view_up, self.view_angle]
        if len(values) != 10 or not all(math.isfinite(float(v)) for v in values):
            raise CameraError("camera position, focal point and view up need 3 finite numbers each")
        if not 0.0 < self.view_angle < 180.0:
            raise CameraError("view angle must be between 0 and 180 degrees, "
                              f"not {self.view_angle}")
        forward = np.subtract(self.focal_point, self.position)
        if np.linalg.norm(forward) < 1e-9:
            raise CameraError("camera position and focal point coincide")
        if np.linalg.norm(np.cross(forward, self.view_up)) < 1e-9 * np.linalg.norm(forward):
            raise CameraError("camera view up is zero or parallel to the viewing direction")

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
    def from_dict(cls, terms: dict) -> Camera:
        """Inverse of to_dict; view_angle defaults to VTK's 30 degrees."""
        try:
            return cls(
                position=_triple(terms["position"]),
                focal_point=_triple(terms["focal_point"]),
                view_up=_triple(terms["view_up"]),
                view_angle=float(terms.get("view_angle", 30.0)),
            )
        except KeyError as missing:
            raise CameraError(f"camera is missing {missing}") from None
        except (TypeError, ValueError):
            raise CameraError(
                "camera terms must be numbers: position, focal_point, view_up as 3 numbers each "
                "(RAS mm) and view_angle in degrees"
            ) from None


def _triple(values) -> tuple[float, float, float]:
    if isinstance(values, (str, bytes)) or len(values) != 3:
        raise ValueError("not three numbers")
    x, y, z = values
    return float(x), float(y), float(z)


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
    elevation looks down from superior. Angles in degrees.
    """
    if not (radius > 0 and math.isfinite(radius)):
        raise CameraError(f"orbit radius must be positive, not {radius}")
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
