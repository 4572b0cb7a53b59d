"""Cropping to a box (issue 15): render(crop=...), the clip at the faces (render/clip.py),
export_ply's crop, and the checks of the crop argument.

The Gaussians are AGP of the bundled sample CT (CT-Bone, with its segmentation), prepared once.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from RenderFMLib.api import CropBox, default_camera, prepare, render
from RenderFMLib.errors import ArgumentError, ArgumentTypeError, RenderFMWarning
from RenderFMLib.ply import sliced_gaussians
from RenderFMLib.render.clip import clip_to_planes
from RenderFMLib.resources import resource_path

SIZE = 96


@pytest.fixture(scope="module")
def gaussians():
    return prepare(resource_path("sample", "ct.nii.gz"),
                   resource_path("sample", "segmentation.nii.gz"), "CT-Bone")


@pytest.fixture(scope="module")
def camera(gaussians):
    return default_camera(gaussians)


def _bounds_around(gaussians, margin: float) -> list[float]:
    """R_MIN, R_MAX, ... of the Gaussians' centres, widened by margin mm."""
    means = gaussians.means.numpy()
    low, high = means.min(0) - margin, means.max(0) + margin
    return [float(v) for pair in zip(low, high) for v in pair]


def test_a_box_holding_everything_changes_nothing(gaussians, camera) -> None:
    """4 sigma_max of margin: every Gaussian lies wholly inside, so the frame is bit-identical."""
    sigma = float(torch.linalg.eigvalsh(gaussians.derived()[0]).max().sqrt())
    whole = render(gaussians, camera, SIZE)
    cropped = render(gaussians, camera, SIZE, crop=_bounds_around(gaussians, 4 * sigma))
    assert torch.equal(whole.rgb, cropped.rgb) and torch.equal(whole.alpha, cropped.alpha)


def test_a_box_holding_nothing_gives_an_empty_frame_and_a_warning(gaussians, camera) -> None:
    far = [1e4, 1e4 + 10, 0, 10, 0, 10]
    with pytest.warns(RenderFMWarning, match="crop box holds none of the"):
        frame = render(gaussians, camera, SIZE, crop=far, background=(0.2, 0.3, 0.4))
    assert float(frame.alpha.max()) == 0.0
    assert torch.allclose(frame.rgb, torch.tensor([0.2, 0.3, 0.4]).expand_as(frame.rgb))


def test_a_cut_face_is_sharp_where_centre_cutting_overhangs(gaussians) -> None:
    """Seen from the patient's right (azimuth 270, the face edge-on) at 256 px (2.0 mm a pixel),
    a box whose lower face lies 0.3 mm below a layer of Gaussian centres: rows above the face
    hold the picture, and from two rows below the face's (rounded) row on alpha stays under 0.05
    (measured 0.0; the row after the face's straddles it, 0.54: a clipped splat keeps 1.3 mm of
    spread across the face). Keeping the layer whole, as cutting at the centres does, draws it
    4 mm past the face (measured 0.77 two rows below)."""
    size, camera = 256, default_camera(gaussians, 270.0)
    centre = gaussians.center_ras()
    layers = np.unique(gaussians.means[:, 2].numpy())
    face = float(layers[np.argmin(np.abs(layers - centre[2]))]) - 0.3
    bounds = _bounds_around(gaussians, 50.0)
    bounds[4] = face
    rows = render(gaussians, camera, size, crop=bounds).alpha.amax(dim=1)
    face_row = _row_of(camera, np.array([centre[0], centre[1], face]), size)
    assert float(rows[face_row - 20:face_row - 1].min()) > 0.5  # 40 mm above the face: drawn
    assert float(rows[face_row + 2:].max()) < 0.05
    whole = render(gaussians, camera, size).alpha.amax(dim=1)
    assert float(whole[face_row + 2:].max()) > 0.5  # the CT does go on below


def _row_of(camera, point: np.ndarray, size: int) -> int:
    """The image row (0 at the top) where the pinhole camera sees point (RAS mm)."""
    from RenderFMLib.camera import camera_tensors

    world_to_camera, intrinsics, _ = camera_tensors(camera, size, size, torch.device("cpu"),
                                                    torch.float64)
    eye = world_to_camera[:3, :3] @ torch.as_tensor(point) + world_to_camera[:3, 3]
    return round(float(intrinsics[1, 1] * eye[1] / eye[2] + intrinsics[1, 2]))


def test_groups_and_labels_still_work_with_a_crop(gaussians, camera, without_groups) -> None:
    bounds = _bounds_around(gaussians, 50.0)
    bounds[4] = float(gaussians.center_ras()[2])
    hidden = render(gaussians, camera, SIZE, crop=bounds, hidden_groups="skeleton")
    expected = render(without_groups(gaussians, ["skeleton"]), camera, SIZE, crop=bounds)
    assert torch.equal(hidden.rgb, expected.rgb)
    kept = render(gaussians, camera, SIZE, crop=bounds).alpha
    assert float((kept - hidden.alpha).abs().max()) > 0.1  # the skeleton was in the box


def test_clipping_a_gaussian_at_its_centre_gives_the_half_normal_moments() -> None:
    """One Gaussian (sigma 2 mm along R, 1 mm across) cut by R <= 0 through its centre, seen
    along R: mean -sigma sqrt(2/pi), variance (1 - 2/pi) sigma^2 (the half-normal), across
    unchanged, and half its optical depth (1 - alpha' = (1 - alpha)^0.5)."""
    sigma, alpha = 2.0, 0.6
    covariance = torch.diag(torch.tensor([sigma ** 2, 1.0, 1.0], dtype=torch.float64))
    kept, means, cov, logits = clip_to_planes(
        torch.zeros(1, 3, dtype=torch.float64), covariance[None],
        torch.logit(torch.tensor([alpha], dtype=torch.float64)),
        torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
        torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64))
    assert bool(kept.all())
    assert math.isclose(float(means[0, 0]), -sigma * math.sqrt(2 / math.pi), rel_tol=1e-9)
    assert math.isclose(float(cov[0, 0, 0]), (1 - 2 / math.pi) * sigma ** 2, rel_tol=1e-9)
    assert torch.allclose(cov[0, 1:, 1:], covariance[1:, 1:])
    assert math.isclose(1 - float(torch.sigmoid(logits[0])), (1 - alpha) ** 0.5, rel_tol=1e-9)


def test_a_rotated_box_keeps_the_points_of_its_own_frame(gaussians) -> None:
    """A thin slab turned 45 degrees about S holds the centres it contains in its own axes: the
    clip acts on the means as sliced at the camera, and re-slicing a clipped Gaussian (its mean
    moved, so its view direction turned a little) can put it a few hundredths of a mm past a face
    (the network's Gaussians shift by up to 2.3 mm when sliced; measured 0.03 mm past): 0.1 mm."""
    turn = math.radians(45.0)
    axes = ((math.cos(turn), -math.sin(turn), 0.0), (math.sin(turn), math.cos(turn), 0.0),
            (0.0, 0.0, 1.0))
    box = CropBox(tuple(gaussians.center_ras()), (400.0, 20.0, 400.0), axes)
    points = np.array([[100.0, 100.0, 0.0], [100.0, -100.0, 0.0]]) + box.center
    assert box.contains(points).tolist() == [True, False]
    camera = default_camera(gaussians)
    means = sliced_gaussians(gaussians, camera, box)["means"].numpy()
    local = (means - box.center) @ np.asarray(axes)
    assert 0 < len(means) < len(gaussians) and np.abs(local[:, 1]).max() < 10.0 + 0.1


@pytest.mark.parametrize(("crop", "error", "message"), [
    ([10, 0, 0, 1, 0, 1], ArgumentError, "render: crop is inverted: R_MIN 10 is above R_MAX 0"),
    ([0, 1, 0, float("nan"), 0, 1], ArgumentError, "render: crop must hold finite numbers"),
    ([0, 1, 0, 1], ArgumentTypeError, "render: crop must be a CropBox or 6 numbers"),
    ("0,1,0,1,0,1", ArgumentTypeError, "render: crop must be a CropBox or 6 numbers"),
    (CropBox((0, 0, 0), (1, 1, 1), ((1, 0, 0), (0, 2, 0), (0, 0, 1))), ArgumentError,
     "render: crop's axes must be a rotation"),
    (CropBox((0, 0, 0), (1, -1, 1)), ArgumentError, "render: crop has a negative size"),
], ids=["inverted", "nan", "four-numbers", "string", "scaled-axes", "negative-size"])
def test_bad_crop_names_the_argument(gaussians, camera, crop, error, message) -> None:
    with pytest.raises(error, match="^" + message.replace("(", r"\(")):
        render(gaussians, camera, SIZE, crop=crop)


def test_the_crop_is_differentiable(gaussians, camera) -> None:
    """Gradients reach the opacities of Gaussians a face cuts (training on a cropped view)."""
    part = gaussians.select(torch.arange(len(gaussians)) < 4000)
    logits = part.opacity_logits.clone().requires_grad_(True)
    part.opacity_logits = logits
    bounds = _bounds_around(part, 50.0)
    bounds[4] = float(part.means[:, 2].median())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render(part, camera, 48, crop=bounds).rgb.sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().max()) > 0
