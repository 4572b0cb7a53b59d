"""Views with target images: the held-out cameras, `dvr` targets, make-gt cache folders.

Held-out views: an orbit over azimuth at a few elevations (framing the CT's bounding sphere, as
`default_camera` does) plus close-ups (cameras aimed at random points of the visible anatomy,
Gaussians drawn by opacity, from random directions, framing a sphere of CLOSE_UP_RADIUS_FRACTION
of the CT's radius, because clinicians zoom), from their own random stream; never trained on.

Targets are rendered by `dvr` (Slicer's look) or read from a `make-gt` cache folder (`dvr` or
`pathtraced`), whose views are then the training and held-out views (every HELDOUT_EVERY-th held
out). Training windows: sampling.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..camera import Camera, orbit_camera
from ..gaussians import SixDGaussians
from ..transfer import Preset
from ..volume import Volume
from .windows import downsample

CLOSE_UP_RADIUS_FRACTION = 0.3
HELDOUT_SEED = 1_000_003
HELDOUT_EVERY = 4


@dataclass
class View:
    """A camera with its target: rgb [H, W, 3] display RGB over black in [0, 1], alpha [H, W]."""

    camera: Camera
    rgb: torch.Tensor
    alpha: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.rgb.shape[1])


def orbit_cameras(gaussians: SixDGaussians, count: int, *, offset: float,
                  elevations: tuple[float, ...]) -> list[Camera]:
    """`count` cameras around the CT: azimuths evenly spaced (starting at `offset` degrees),
    cycling through `elevations` (degrees), each framing the CT's bounding sphere."""
    centre, radius = gaussians.center_ras(), gaussians.bounding_radius()
    return [orbit_camera(centre, radius, offset + 360.0 * i / count,
                         elevations[i % len(elevations)]) for i in range(count)]


def close_up_cameras(gaussians: SixDGaussians, count: int, seed: int) -> list[Camera]:
    """`count` cameras aimed at visible anatomy (points drawn by opacity) from random
    directions, framing CLOSE_UP_RADIUS_FRACTION of the CT's bounding radius."""
    if count == 0:
        return []
    generator = torch.Generator().manual_seed(seed)
    weights = torch.sigmoid(gaussians.opacity_logits.detach().float().cpu())
    picks = torch.multinomial(weights, count, replacement=True, generator=generator)
    radius = CLOSE_UP_RADIUS_FRACTION * gaussians.bounding_radius()
    cameras = []
    for pick in picks.tolist():
        azimuth, elevation = (torch.rand(2, generator=generator) * torch.tensor([360.0, 80.0])
                              - torch.tensor([0.0, 40.0])).tolist()
        point = gaussians.means[pick].detach().double().cpu().numpy()
        cameras.append(orbit_camera(point, radius, azimuth, elevation))
    return cameras


def heldout_cameras(gaussians: SixDGaussians, orbit_views: int = 4,
                    close_ups: int = 2) -> list[Camera]:
    """Cameras never trained on: azimuths between the training ones' (offset by 360 / (2 x 7 x
    orbit_views) degrees, so no common multiple with usual view counts), elevations +-12 and 40
    degrees, and close-ups from a separate random stream."""
    offset = 360.0 / (14.0 * orbit_views) + 11.0
    return (orbit_cameras(gaussians, orbit_views, offset=offset, elevations=(12.0, -12.0, 40.0))
            + close_up_cameras(gaussians, close_ups, HELDOUT_SEED))


def dvr_target(ct: Volume, preset: Preset) -> Callable[[Camera, int], View]:
    """render(camera, size) -> View: `dvr` (Slicer's look) of `ct` at size x size pixels (one
    DvrScene: the CT's gradient computed once for every view)."""
    from ..groundtruth.dvr import DvrScene

    scene = DvrScene(ct, preset, device=ct.array.device)

    def render(camera: Camera, size: int) -> View:
        frame = scene.render(camera, size)
        return View(camera, frame.rgb.float(), frame.alpha.float())

    return render


def cached_targets(folder: str | Path) -> tuple[dict, list[View]]:
    """(settings, views) of a `make-gt` settings folder (groundtruth.cache.read_views)."""
    from ..groundtruth.cache import read_views

    settings, views = read_views(folder)
    return settings, [View(camera, torch.from_numpy(image.rgb), torch.from_numpy(image.alpha))
                      for camera, image in views]


def downsample_view(view: View, scale: int) -> View:
    """The view at 1 / scale of its size: targets averaged over scale x scale pixels."""
    side = view.size - view.size % scale
    return View(view.camera, downsample(view.rgb[:side, :side], scale),
                downsample(view.alpha[:side, :side], scale))
