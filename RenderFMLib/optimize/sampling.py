"""Where each fine-tuning step looks: a window of a view, and the target's pixels in it; and
views_for, which sets up the training windows and held-out views of a target.

    FreshViews   dvr targets: new random cameras (any azimuth, elevations up to MAX_ELEVATION,
                 CLOSE_UP_SHARE of them zoomed on the anatomy as close_up_cameras frames it) at
                 a random side from SMALLEST_VIEW (half) of `size` to `size` pixels; only the
                 window is ray-marched (DvrScene.render(window=...)). FRESH_SHARE of the steps
                 draw a new one (every step for windows of FRESH_EVERY_STEP_SIDE px or more);
                 the others reuse one of the last POOL.
    CachedViews  a fixed set of views with their targets (a make-gt folder): windows cut from them
                 at full resolution or, HALF_SCALE_STEPS of the time, at half (the target
                 averaged over 2 x 2 pixels).

Why fresh views: fitted to a fixed set of 24 orbit views and 8 close-ups, the Gaussians learn
those views by heart, view-dependent opacity and shading included. Measured on the sample
(CT-Bone, prepared at 1.5 mm, 900 s): foreground SSIM against dvr at 512 px 0.90-0.94 on training
views and 0.81-0.86 on held-out ones. Hundreds of new views leave nothing to learn by heart. A
128 px dvr window costs more than a step of the sparse presets (70-160 ms on the 2-core CPU with
the C++ marcher), so reusing each window a few times buys steps: measured with the PyTorch
marcher (about 0.2 s a window) on the sample at 3 mm, 300 s, held-out foreground SSIM against
dvr at 512 px, a new view every step / half of them / a third: CT-Bone 0.828 (972 steps) /
0.838 (1,523), CT-AAA 0.484 (1,220) / - / 0.549 (3,000).

With many Gaussians the balance turns: a step costs more than its target (sample at 1.5 mm,
CT-Bone, 394 px windows: 705 ms for the Gaussians' part, 296 ms for a new dvr window), and a
few hundred steps over a third as many views leave which views were drawn to decide the result.
Held-out against dvr at 512 px, 300 s, seeds 0 / 1 (median PSNR / foreground SSIM; the two
close-ups' PSNR): a new view every third step 40.81 / 0.935 (33.92, 39.10) in 426 steps and
40.11 / 0.927 (35.72, 37.96) in 463; every step 40.17 / 0.935 (36.11, 40.07) in 333 and 40.13 /
0.928 (35.64, 38.40) in 341. By steps the spread shows plainly: after 150 steps 38.82 and 35.39 dB
with a third, 37.78 and 37.49 with every step. CT-Chest-Contrast-Enhanced at 1.5 mm (167 px
windows), seed 0: 40.52 / 0.954 (33.52, 43.13) against 40.37 / 0.950 (33.62, 43.83) every step,
no gain; so only windows of FRESH_EVERY_STEP_SIDE px or more (from about 160,000 Gaussians) draw a
new view every step, on the CPU (on a GPU the steps are cheap and this was not measured).

Windows are centred, FOREGROUND_CROPS of the time, on the anatomy: for FreshViews on the
projection of a Gaussian drawn by opacity, for CachedViews on a pixel the target covers.

Their side (window_side, unless the caller gives one) grows with the square root of the Gaussian
count, so that a step's pixels grow as its per-Gaussian work (precompute, slice_project, the
sort, Adam) does: with many Gaussians that work dominates a step, and a larger window buys far
more pixels for little more time. Measured on the sample, 300 s, held-out foreground SSIM against
Slicer's CPU ray cast at 256 / 512 px (2-core Intel Xeon):
- CT-Bone at 1.5 mm (379,168 Gaussians), windows of 128 / 256 / 384 px: 610 / 242 / 220 steps,
  0.905 / 0.894, 0.918 / 0.907, 0.927 / 0.920;
- CT-Bone at 3 mm (46,774), 128 / 192 / 256 px: 0.866 / 0.836, 0.865 / 0.835, 0.864 / 0.841;
- the sparse presets, 128 against 256 px: CT-Chest-Contrast-Enhanced at 3 mm (8,711) 0.892 /
  0.826 against 0.883 / 0.817, at 1.5 mm (68,099) 0.939 / 0.929 against 0.931 / 0.918; CT-AAA at
  3 mm (5,058) 0.733 / 0.591 against 0.723 / 0.581;
- three large CTs on their own grids (LIDC chest, POPI thorax, GE head: 139,052-426,417), 128 px
  against window_side's 239-418 px: -0.008 to +0.007 (docs/quality_window/).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera, orbit_camera
from ..errors import RenderFMError
from ..frame import Progress, silent
from ..gaussians import SixDGaussians
from ..groundtruth.dvr import DvrScene
from ..transfer import Preset
from ..volume import Volume
from .views import (
    CLOSE_UP_RADIUS_FRACTION,
    HELDOUT_EVERY,
    View,
    cached_targets,
    downsample_view,
    heldout_cameras,
)

MAX_ELEVATION = 60.0    # degrees, of FreshViews' cameras (area-uniform in between)
CLOSE_UP_SHARE = 0.25   # of FreshViews' cameras
SMALLEST_VIEW = 0.5     # FreshViews' sides: from this x `size` to `size` px
FOREGROUND_CROPS = 0.9  # windows centred on the anatomy
HALF_SCALE_STEPS = 0.3  # CachedViews' windows at half resolution
FRESH_SHARE = 1 / 3     # of FreshViews' samples that are new views; the others reuse one of
POOL = 64               # the last POOL new ones
FRESH_EVERY_STEP_SIDE = 256  # px: windows this large draw a new view every step
WINDOW_SIDE = 128       # px, window_side's for up to WINDOW_GAUSSIANS Gaussians
WINDOW_GAUSSIANS = 40_000
MAX_WINDOW_SIDE = 512   # px, window_side's largest


@dataclass
class Window:
    """A window (x0, y0, side) px of a size x size view of `camera`, and the target there: rgb
    [side, side, 3] over black in [0, 1], alpha [side, side]."""

    camera: Camera
    size: int
    box: tuple[int, int, int]
    rgb: torch.Tensor
    alpha: torch.Tensor


class FreshViews:
    """dvr target windows of new random views of `gaussians`' CT (scene), one per sample()."""

    def __init__(self, gaussians: SixDGaussians, scene: DvrScene, size: int, crop: int,
                 seed: int = 0) -> None:
        self.scene, self.size, self.crop = scene, size, crop
        self.fresh_share = fresh_share(self.largest_window(), gaussians.means.device)
        self.centre, self.radius = gaussians.center_ras(), gaussians.bounding_radius()
        self.points = gaussians.means.detach().double().cpu().numpy()
        self.weights = torch.sigmoid(gaussians.opacity_logits.detach().float().cpu())
        self.generator = torch.Generator().manual_seed(seed)
        self.pool: list[Window] = []

    def largest_window(self) -> int:
        """Side (px) of the largest windows sample() gives."""
        return min(self.crop, self.size)

    def sample(self) -> Window:
        if self.pool and self._uniform() >= self.fresh_share:
            return self.pool[int(torch.randint(len(self.pool), (1,), generator=self.generator))]
        window = self._fresh()
        self.pool = [*self.pool[-(POOL - 1):], window]
        return window

    def _fresh(self) -> Window:
        camera = self._camera()
        smallest = int(SMALLEST_VIEW * self.size)
        size = int(torch.randint(smallest, self.size + 1, (1,), generator=self.generator))
        side = min(self.crop, size)
        if self._uniform() < FOREGROUND_CROPS:
            x, y = _project(camera, size, self._anatomy())
        else:
            x, y = (size * self._uniform() for _ in range(2))
        box = _box(x, y, side, size)
        frame = self.scene.render(camera, size, window=box)
        return Window(camera, size, box, frame.rgb.float(), frame.alpha.float())

    def _camera(self) -> Camera:
        azimuth = 360.0 * self._uniform()
        elevation = math.degrees(math.asin((2.0 * self._uniform() - 1.0)
                                           * math.sin(math.radians(MAX_ELEVATION))))
        if self._uniform() < CLOSE_UP_SHARE:
            return orbit_camera(self._anatomy(), CLOSE_UP_RADIUS_FRACTION * self.radius,
                                azimuth, elevation)
        return orbit_camera(self.centre, self.radius, azimuth, elevation)

    def _anatomy(self) -> np.ndarray:
        """A Gaussian's mean [3] (RAS mm) drawn by opacity."""
        return self.points[int(torch.multinomial(self.weights, 1, generator=self.generator))]

    def _uniform(self) -> float:
        return float(torch.rand(1, generator=self.generator))


class CachedViews:
    """Windows of a fixed set of views with their targets, one per sample()."""

    def __init__(self, views: list[View], crop: int, seed: int = 0) -> None:
        self.crop = crop
        # each view with its foreground pixels [P, 2] (y, x), where most windows are centred
        self.views = [_with_foreground(view) for view in views]
        self.half_views = [_with_foreground(downsample_view(view, 2)) for view in views]
        self.generator = torch.Generator().manual_seed(seed)

    def largest_window(self) -> int:
        """Side (px) of the largest windows sample() gives."""
        return min(self.crop, max(view.size for view, _ in self.views))

    def sample(self) -> Window:
        number = int(torch.randint(len(self.views), (1,), generator=self.generator))
        half = float(torch.rand(1, generator=self.generator)) < HALF_SCALE_STEPS
        view, inside = (self.half_views if half else self.views)[number]
        side = min(self.crop, view.size)
        anywhere = float(torch.rand(1, generator=self.generator)) >= FOREGROUND_CROPS
        if anywhere or not len(inside):
            y, x = torch.randint(view.size, (2,), generator=self.generator).tolist()
        else:
            y, x = inside[int(torch.randint(len(inside), (1,), generator=self.generator))].tolist()
        x0, y0, side = _box(x, y, side, view.size)
        return Window(view.camera, view.size, (x0, y0, side),
                      view.rgb[y0:y0 + side, x0:x0 + side], view.alpha[y0:y0 + side, x0:x0 + side])


def fresh_share(side: int, device: torch.device | str = "cpu") -> float:
    """The share of FreshViews' samples that are new views, for windows of `side` px of
    Gaussians on `device`: on the CPU every one from FRESH_EVERY_STEP_SIDE px (many Gaussians: a
    step costs more than its target), else FRESH_SHARE (on a GPU a step is cheap: not measured
    there)."""
    cpu = torch.device(device).type == "cpu"
    return 1.0 if cpu and side >= FRESH_EVERY_STEP_SIDE else FRESH_SHARE


def window_side(count: int) -> int:
    """Side (px) of the training windows for `count` Gaussians: WINDOW_SIDE up to
    WINDOW_GAUSSIANS, growing with the square root of the count up to MAX_WINDOW_SIDE."""
    side = WINDOW_SIDE * math.sqrt(max(count, 1) / WINDOW_GAUSSIANS)
    return int(min(MAX_WINDOW_SIDE, max(WINDOW_SIDE, round(side))))


def _box(x: float, y: float, side: int, size: int) -> tuple[int, int, int]:
    """(x0, y0, side): the side x side window centred nearest (x, y) px inside the image."""
    x0 = min(max(int(x) - side // 2, 0), size - side)
    y0 = min(max(int(y) - side // 2, 0), size - side)
    return x0, y0, side


def _project(camera: Camera, size: int, point: np.ndarray) -> tuple[float, float]:
    """Pixel (x, y) of `point` (RAS mm) in the size x size view of camera; the image centre
    for a point behind the camera."""
    world_to_camera, intrinsics = camera.world_to_camera(), camera.intrinsics(size, size)
    x, y, z = world_to_camera[:3, :3] @ point + world_to_camera[:3, 3]
    if z <= 0:
        return size / 2.0, size / 2.0
    return (intrinsics[0, 0] * x / z + intrinsics[0, 2], intrinsics[1, 1] * y / z
            + intrinsics[1, 2])


def _with_foreground(view: View) -> tuple[View, torch.Tensor]:
    """(view, [P, 2] (y, x) of the pixels its target covers, alpha > 0.05)."""
    return view, (view.alpha > 0.05).nonzero().cpu()


def views_for(gaussians: SixDGaussians, ct: Volume | None, target: str, *, size: int,
              crop: int | None, heldout_size: int, seed: int = 0,
              progress: Progress = silent) -> tuple[FreshViews | CachedViews, list[View]]:
    """(training windows, held-out views) of `target`. "dvr": of `ct` (the Gaussians' own CT,
    HU): new random views of up to size x size pixels, crop x crop windows of them; the held-out
    views are rendered now, at heldout_size. A make-gt folder: its views, every
    HELDOUT_EVERY-th held out, the others cut into crop x crop windows. crop None:
    window_side(len(gaussians))."""
    crop = window_side(len(gaussians)) if crop is None else crop
    if target == "dvr":
        if ct is None:
            raise RenderFMError("the dvr target needs the CT the Gaussians came from")
        scene = DvrScene(ct, Preset.from_dict(gaussians.preset), device=ct.array.device)
        cameras = heldout_cameras(gaussians)
        heldout: list[View] = []
        for number, camera in enumerate(cameras):
            frame = scene.render(camera, heldout_size)
            heldout.append(View(camera, frame.rgb.float(), frame.alpha.float()))
            progress((number + 1) / len(cameras), f"held-out view {number + 1}/{len(cameras)}")
        return FreshViews(gaussians, scene, size, crop, seed), heldout
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
    device = gaussians.means.device  # the cache is read to the CPU; the renders are here
    views = [View(view.camera, view.rgb.to(device), view.alpha.to(device)) for view in views]
    heldout = views[HELDOUT_EVERY - 1::HELDOUT_EVERY] or views[-1:]
    train = [view for view in views if not any(view is held for held in heldout)]
    return CachedViews(train, crop, seed), heldout
