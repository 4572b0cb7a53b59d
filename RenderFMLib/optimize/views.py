"""Cameras to optimise and judge on, and their target images.

Training views: an orbit over azimuth at a few elevations (framing the CT's bounding sphere, as
`default_camera` does) plus close-ups: cameras aimed at random points of the visible anatomy
(Gaussians drawn by opacity) from random directions, framing a sphere of CLOSE_UP_RADIUS_FRACTION
of the CT's radius, because clinicians zoom. Held-out views use other azimuths, elevations and
close-up points (a separate random stream), and are never trained on.

Targets are rendered on the fly by `dvr` (Slicer's look), the training ones only when the loop
asks for them (TrainingViews), or read from a `make-gt` cache folder (`dvr` or `pathtraced`),
whose cameras then become the training and held-out views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..camera import Camera, orbit_camera
from ..errors import RenderFMError
from ..frame import Progress, silent
from ..gaussians import SixDGaussians
from ..transfer import Preset
from ..volume import Volume
from .windows import downsample

ELEVATIONS = (-25.0, 0.0, 25.0)
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


def orbit_cameras(gaussians: SixDGaussians, count: int, *, offset: float = 0.0,
                  elevations: tuple[float, ...] = ELEVATIONS) -> list[Camera]:
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


def training_cameras(gaussians: SixDGaussians, orbit_views: int, close_ups: int,
                     seed: int = 0) -> list[Camera]:
    """The cameras optimised on, an orbit and close-ups, in an order where every prefix is spread
    around the CT (azimuths in bit-reversed order, close-ups mixed in evenly): when the time
    budget leaves room for only some targets, the first ones cover the most."""
    orbit = orbit_cameras(gaussians, orbit_views)
    orbit = [orbit[i] for i in sorted(range(orbit_views), key=_bit_reversed)]
    zoomed = close_up_cameras(gaussians, close_ups, seed)
    every = max(1, round(len(orbit) / max(len(zoomed), 1)))
    ordered = []
    for number, camera in enumerate(orbit):
        ordered.append(camera)
        if (number + 1) % every == 0 and zoomed:
            ordered.append(zoomed.pop(0))
    return ordered + zoomed


def _bit_reversed(number: int, bits: int = 16) -> int:
    return int(f"{number:0{bits}b}"[::-1], 2)


def heldout_cameras(gaussians: SixDGaussians, orbit_views: int = 4,
                    close_ups: int = 2) -> list[Camera]:
    """Cameras never trained on: azimuths between the training ones' (offset by 360 / (2 x 7 x
    orbit_views) degrees, so no common multiple with usual view counts), elevations +-12 and 40
    degrees, and close-ups from a separate random stream."""
    offset = 360.0 / (14.0 * orbit_views) + 11.0
    return (orbit_cameras(gaussians, orbit_views, offset=offset, elevations=(12.0, -12.0, 40.0))
            + close_up_cameras(gaussians, close_ups, HELDOUT_SEED))


class TrainingViews:
    """Training views whose targets are rendered when first asked for (render_next), so a time
    budget can stop rendering targets and start optimising; `ready` holds those rendered."""

    def __init__(self, cameras: list[Camera], size: int,
                 render: Callable[[Camera, int], View] | None = None,
                 ready: list[View] | None = None) -> None:
        self.ready = list(ready or [])
        self.pending = list(cameras)
        self.size = size
        self._render = render

    def __len__(self) -> int:
        return len(self.ready) + len(self.pending)

    def render_next(self) -> View:
        """Render the next pending target and add it to `ready`."""
        camera = self.pending.pop(0)
        if self._render is None:
            raise TypeError("TrainingViews has pending cameras but no render function")
        view = self._render(camera, self.size)
        self.ready.append(view)
        return view


def dvr_target(ct: Volume, preset: Preset) -> Callable[[Camera, int], View]:
    """render(camera, size) -> View: `dvr` (Slicer's look) of `ct` at size x size pixels."""
    from ..groundtruth.dvr import render_dvr

    def render(camera: Camera, size: int) -> View:
        frame = render_dvr(ct, preset, camera, size, device=ct.array.device)
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


def views_for(gaussians: SixDGaussians, ct: Volume | None, target: str, *, size: int,
              orbit_views: int, close_ups: int, heldout_size: int, seed: int = 0,
              progress: Progress = silent) -> tuple[TrainingViews, list[View]]:
    """(training views, held-out views) of `target`. "dvr": of `ct` (the Gaussians' own CT, HU);
    the held-out targets are rendered now, the training ones on demand. A make-gt folder: its
    views, every HELDOUT_EVERY-th held out."""
    if target == "dvr":
        if ct is None:
            raise RenderFMError("the dvr target needs the CT the Gaussians came from")
        render = dvr_target(ct, Preset.from_dict(gaussians.preset))
        cameras = heldout_cameras(gaussians)
        heldout: list[View] = []
        for number, camera in enumerate(cameras):
            heldout.append(render(camera, heldout_size))
            progress((number + 1) / len(cameras), f"held-out view {number + 1}/{len(cameras)}")
        train_cameras = training_cameras(gaussians, orbit_views, close_ups, seed)
        return TrainingViews(train_cameras, size, render), heldout
    settings, views = cached_targets(target)
    wanted = (gaussians.preset or {}).get("name")
    if settings.get("preset") != wanted:
        raise RenderFMError(f"{target} holds views of preset '{settings.get('preset')}', but "
                            f"the Gaussians were made with '{wanted}'")
    centre = np.asarray(views[0].camera.focal_point)
    if not np.allclose(centre, gaussians.center_ras(), atol=1.0):
        raise RenderFMError(f"{target} holds views of another CT (centred at "
                            f"{np.round(centre, 1).tolist()} RAS mm, these Gaussians' CT at "
                            f"{np.round(gaussians.center_ras(), 1).tolist()})")
    if len(views) < 2:
        raise RenderFMError(f"{target} holds {len(views)} view; fine-tuning needs at least 2 "
                            "(one is held out)")
    heldout = views[HELDOUT_EVERY - 1::HELDOUT_EVERY] or views[-1:]
    train = [view for view in views if not any(view is held for held in heldout)]
    return TrainingViews([], train[0].size, ready=train), heldout
