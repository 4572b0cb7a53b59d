"""Fine-tuning's training windows (optimize/sampling.py) on the bundled sample CT, CT-Bone:
FreshViews draws a new random view per step and ray-marches only the window; CachedViews cuts
windows out of a fixed set of views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from RenderFMLib.api import prepare
from RenderFMLib.groundtruth.dvr import DvrScene, render_dvr
from RenderFMLib.optimize import sampling
from RenderFMLib.optimize.sampling import CachedViews, FreshViews
from RenderFMLib.optimize.views import View, heldout_cameras
from RenderFMLib.transfer import load_preset

SIZE, CROP = 64, 32  # px


@pytest.fixture
def always_new(monkeypatch):
    """Every FreshViews sample a new view (no reuse), as the first tests check the views."""
    monkeypatch.setattr(sampling, "FRESH_SHARE", 1.0)


@pytest.fixture(scope="module")
def setting(sample_ct):
    preset = load_preset("CT-Bone")
    return sample_ct, preset, prepare(sample_ct, None, preset, weights=None)


def _draw(setting, count: int, seed: int = 0) -> list[sampling.Window]:
    ct, preset, gaussians = setting
    views = FreshViews(gaussians, DvrScene(ct, preset), SIZE, CROP, seed)
    return [views.sample() for _ in range(count)]


def _elevation(camera) -> float:
    """Degrees above the axial plane, of the camera seen from its focal point."""
    towards = np.subtract(camera.position, camera.focal_point)
    return math.degrees(math.asin(towards[2] / np.linalg.norm(towards)))


def test_fresh_views_are_new_views_within_the_ranges(setting, always_new) -> None:
    """40 draws: 40 different cameras at elevations within MAX_ELEVATION, sides from SIZE / 2 to
    SIZE, windows of CROP inside them; both framings (the whole CT and close-ups, 0.3 of its
    radius) occur, and most windows show anatomy (FOREGROUND_CROPS = 0.9 are centred on the
    projection of an opaque Gaussian; a window counts if 5 % of its pixels are covered)."""
    windows = _draw(setting, 40)
    cameras = {(w.camera.position, w.camera.focal_point) for w in windows}
    assert len(cameras) == 40
    assert all(abs(_elevation(w.camera)) <= sampling.MAX_ELEVATION + 1e-9 for w in windows)
    assert all(SIZE // 2 <= w.size <= SIZE for w in windows)
    for w in windows:
        x0, y0, side = w.box
        assert side == CROP and 0 <= x0 <= w.size - side and 0 <= y0 <= w.size - side
        assert w.rgb.shape == (side, side, 3) and w.alpha.shape == (side, side)
    centre = setting[2].center_ras()
    close = [not np.allclose(w.camera.focal_point, centre) for w in windows]
    assert 0 < sum(close) < len(close)
    showing = [float((w.alpha > 0.05).float().mean()) >= 0.05 for w in windows]
    assert sum(showing) >= 0.7 * len(windows)


def test_a_fresh_window_is_that_view_of_dvr(setting, always_new) -> None:
    """The target of a window equals those pixels of the whole dvr frame (within 1e-6, as in
    test_dvr's window test)."""
    ct, preset, _ = setting
    for window in _draw(setting, 3, seed=4):
        whole = render_dvr(ct, preset, window.camera, window.size)
        x0, y0, side = window.box
        torch.testing.assert_close(window.rgb, whole.rgb[y0:y0 + side, x0:x0 + side],
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(window.alpha, whole.alpha[y0:y0 + side, x0:x0 + side],
                                   rtol=0, atol=1e-6)


def test_the_seed_fixes_the_views(setting) -> None:
    first, again, other = _draw(setting, 3), _draw(setting, 3), _draw(setting, 3, seed=1)
    assert [(w.camera, w.size, w.box) for w in first] == [(w.camera, w.size, w.box) for w in again]
    assert [w.camera for w in first] != [w.camera for w in other]


def test_fresh_views_reuse_recent_windows(setting, monkeypatch) -> None:
    """With FRESH_SHARE 1/3 and a pool of 4: about a third of 45 samples are new views (binomial,
    15 expected: between 6 and 26 is 4 standard deviations), the others repeat one of the 4 newest
    before them."""
    monkeypatch.setattr(sampling, "POOL", 4)
    windows = _draw(setting, 45)
    new = []
    for window in windows:
        if not any(window is seen for seen in new):
            new.append(window)
        else:
            assert any(window is seen for seen in new[-4:])
    assert windows[0] is new[0] and 6 <= len(new) <= 26


def test_large_windows_draw_a_new_view_every_step(setting) -> None:
    """fresh_share: a third below FRESH_EVERY_STEP_SIDE, all from it on the CPU (a third on a
    GPU, not measured there); FreshViews with windows that large gives a new camera at every
    sample (with a third, 6 draws would all be new with chance (1/3)^5 < 0.5 %, and the seed is
    fixed)."""
    side = sampling.FRESH_EVERY_STEP_SIDE
    assert sampling.fresh_share(side - 1) == sampling.FRESH_SHARE < 1.0
    assert sampling.fresh_share(side) == 1.0
    assert sampling.fresh_share(side, "cuda") == sampling.FRESH_SHARE
    ct, preset, gaussians = setting
    views = FreshViews(gaussians, DvrScene(ct, preset), side, side, seed=0)
    windows = [views.sample() for _ in range(6)]
    assert len({id(window) for window in windows}) == 6
    assert len({window.camera for window in windows}) == 6


def test_cached_windows_are_cut_from_their_views(setting) -> None:
    """Windows of two 64 px views: the view's own pixels, at full resolution (side CROP) or at
    half (side SIZE / 2, the target averaged over 2 x 2 pixels)."""
    ct, preset, gaussians = setting
    views = []
    for camera in heldout_cameras(gaussians, orbit_views=2, close_ups=0):
        frame = render_dvr(ct, preset, camera, SIZE)
        views.append(View(camera, frame.rgb.float(), frame.alpha.float()))
    cached = CachedViews(views, CROP, seed=0)
    sizes = set()
    for _ in range(20):
        window = cached.sample()
        view = next(v for v in views if v.camera == window.camera)
        x0, y0, side = window.box
        if window.size == SIZE:
            assert torch.equal(window.rgb, view.rgb[y0:y0 + side, x0:x0 + side])
        else:
            half = torch.nn.functional.avg_pool2d(view.alpha[None, None], 2)[0, 0]
            torch.testing.assert_close(window.alpha, half[y0:y0 + side, x0:x0 + side])
        sizes.add(window.size)
    assert sizes == {SIZE, SIZE // 2}


def test_window_side_grows_with_the_square_root_of_the_gaussian_count() -> None:
    """WINDOW_SIDE up to WINDOW_GAUSSIANS, then side^2 in proportion to the count (4x the
    Gaussians: twice the side, within rounding), never above MAX_WINDOW_SIDE."""
    small, base = sampling.WINDOW_SIDE, sampling.WINDOW_GAUSSIANS
    assert [sampling.window_side(n) for n in (0, 1, 5_058, base)] == [small] * 4
    assert abs(sampling.window_side(4 * base) - 2 * small) <= 1
    sides = [sampling.window_side(n) for n in range(base, 40 * base, base // 7)]
    assert sides == sorted(sides) and sides[-1] == sampling.MAX_WINDOW_SIDE


def test_views_for_takes_window_side_unless_given_a_crop(setting, monkeypatch) -> None:
    """crop None: windows of window_side(len(gaussians)) (made small here, so the sample's 46,774
    Gaussians give a side below SIZE); a crop given is used as it is."""
    ct, _, gaussians = setting
    monkeypatch.setattr(sampling, "WINDOW_SIDE", 8)
    auto = sampling.window_side(len(gaussians))
    assert 8 < auto < SIZE // 2
    for crop, side in [(None, auto), (CROP, CROP)]:
        train, _ = sampling.views_for(gaussians, ct, "dvr", size=SIZE, crop=crop,
                                      heldout_size=16)
        assert train.sample().box[2] == side
