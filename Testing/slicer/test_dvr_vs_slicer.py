"""The dvr ground-truth renderer against Slicer's own CPU ray cast, headless (issue: camera and
transfer-function conventions): same CT, preset and camera -> SSIM >= 0.92 and silhouettes
within 1 px.

Slicer renders through slicer-core's volume rendering logic in an offscreen 3D view
(groundtruth.slicer_native); dvr is RenderFM's own ray marcher. SSIM 0.92 is the issue's bar (an
independent ray marcher reached 0.90-0.98 on real CTs, DESIGN.md section 3); 1 px is the CPU ray
cast's offset from an ideal pinhole (half a pixel) plus a pixel of 8-bit edge rounding.
"""

import numpy as np
import pytest

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib.camera import orbit_camera  # noqa: E402
from RenderFMLib.evaluation.metrics import ssim  # noqa: E402
from RenderFMLib.groundtruth.dvr import render_dvr  # noqa: E402
from RenderFMLib.groundtruth.slicer_native import render_native  # noqa: E402

SIZE = 160
VIEWS = [(0.0, 0.0), (120.0, 25.0)]  # anterior, and from the patient's left-posterior, above
PRESETS = ["CT-Bone", "CT-AAA", "CT-Chest-Contrast-Enhanced"]
MIN_SSIM = 0.92
EDGE_PX = 1.0
# A pixel counts as covered when some channel is 16 grey levels (6 %) above black. Fainter wisps
# differ: on the sample, CT-Bone's dvr shows a near-transparent streak 11 px past Slicer's edge at
# 8 grey levels (VTK accumulates in 15-bit fixed point and drops such samples); at 16 and above
# every edge agrees within 1 px for all three presets.
COVERED = 16 / 255


def _cameras(ct):
    return [orbit_camera(ct.center_ras(), ct.bounding_radius(), azimuth, elevation)
            for azimuth, elevation in VIEWS]


def _row_extents(covered: np.ndarray) -> dict[int, tuple[int, int]]:
    """Leftmost and rightmost covered column of every row that has one."""
    rows = np.flatnonzero(covered.any(axis=1))
    return {int(r): (int(np.argmax(covered[r])),
                     int(len(covered[r]) - 1 - np.argmax(covered[r, ::-1])))
            for r in rows}


@pytest.fixture(scope="module", params=PRESETS)
def pair(request, sample_ct):
    cameras = _cameras(sample_ct)
    native = [image.astype(np.float32) / 255.0
              for image in render_native(sample_ct, request.param, cameras, SIZE)]
    ours = [render_dvr(sample_ct, request.param, camera, SIZE).rgb.numpy() for camera in cameras]
    return request.param, native, ours


def test_dvr_looks_like_slicers_cpu_ray_cast(pair):
    preset, native, ours = pair
    scores = [ssim(a, b) for a, b in zip(ours, native)]
    assert min(scores) >= MIN_SSIM, f"{preset}: SSIM per view {scores}"


def test_silhouettes_line_up(pair):
    """The covered box (first and last covered row and column) agrees within EDGE_PX on every
    side, and so does the median, over rows, of the leftmost and of the rightmost covered pixel.
    (Single rows that graze a thin structure may differ more: one renderer's faint pixel is the
    other's background at 8 bits.)"""
    preset, native, ours = pair
    for a, b in zip(ours, native):
        mask_a, mask_b = a.max(axis=2) > COVERED, b.max(axis=2) > COVERED
        for axis in (0, 1):
            lines_a = np.flatnonzero(mask_a.any(axis))
            lines_b = np.flatnonzero(mask_b.any(axis))
            assert abs(lines_a[0] - lines_b[0]) <= EDGE_PX, preset
            assert abs(lines_a[-1] - lines_b[-1]) <= EDGE_PX, preset
        extents_a, extents_b = _row_extents(mask_a), _row_extents(mask_b)
        common = sorted(set(extents_a) & set(extents_b))
        offsets = np.array([np.subtract(extents_a[r], extents_b[r]) for r in common])
        median = np.median(offsets, axis=0)
        assert np.all(np.abs(median) <= EDGE_PX), f"{preset}: {offsets.tolist()}"


def test_the_comparison_is_sensitive(pair, sample_ct):
    """A control: the same dvr image mirrored left-right, or a different preset, falls below
    the bar, so passing means the conventions agree."""
    preset, native, ours = pair
    mirrored = ours[0][:, ::-1]
    assert ssim(mirrored, native[0]) < MIN_SSIM
    other = "CT-Muscle" if preset != "CT-Muscle" else "CT-Bone"
    wrong_look = render_dvr(sample_ct, other, _cameras(sample_ct)[0], SIZE).rgb.numpy()
    assert ssim(wrong_look, native[0]) < ssim(ours[0], native[0])
