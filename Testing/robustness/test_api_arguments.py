"""The Python API's arguments (issue 13, section 4): wrong types and values are refused at the
public functions (prepare, render, shown, default_camera, Camera, SixDGaussians.load) with an
error naming the argument and what it accepts, never a raw pathlib / NumPy / torch exception;
NumPy numbers and a camera dict are accepted. Non-physical cameras are refused, in Camera and in
camera files (and by the CLI, as one "renderfm: error:" line).

The Gaussians come from a 16^3 synthetic CT (a bone cube labelled as a vertebra), prepared once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from RenderFMLib.api import default_camera, prepare, render, shown
from RenderFMLib.camera import Camera, read_camera_json
from RenderFMLib.errors import ArgumentError, ArgumentTypeError, CameraError, RenderFMError
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.volume import Volume

VERTEBRA = 31  # skeleton
SIZE = 16


@pytest.fixture(scope="module")
def ct() -> Volume:
    array = torch.full((16, 16, 16), -1000.0)
    array[4:12, 4:12, 4:12] = 1000.0
    return Volume(array, np.eye(4))


@pytest.fixture(scope="module")
def labels() -> Volume:
    array = torch.zeros((16, 16, 16), dtype=torch.int64)
    array[4:12, 4:12, 4:12] = VERTEBRA
    return Volume(array, np.eye(4))


@pytest.fixture(scope="module")
def gaussians(ct: Volume, labels: Volume) -> SixDGaussians:
    return prepare(ct, labels, "CT-Bone")


@pytest.fixture(scope="module")
def camera(gaussians: SixDGaussians) -> Camera:
    return default_camera(gaussians)


# --- prepare ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [({"ct": np.zeros((4, 4, 4))}, ArgumentTypeError,
      "prepare: ct must be a Volume (HU, RAS mm) or a path (str or os.PathLike) to a CT file or "
      "DICOM folder, not a numpy.ndarray of shape (4, 4, 4)"),
     ({"ct": ""}, ArgumentError, "prepare: ct is an empty path"),
     ({"segmentation": ""}, ArgumentError, "prepare: segmentation is an empty path"),
     ({"segmentation": np.zeros((4, 4, 4))}, ArgumentTypeError,
      "prepare: segmentation must be None, a Volume of labels, a path"),
     ({"preset": None}, ArgumentTypeError, "prepare: preset must be a Preset"),
     ({"groups": 5}, ArgumentTypeError, "prepare: groups must be a group name or a list"),
     ({"group_colors": "no"}, ArgumentTypeError, "prepare: group_colors must be True or False"),
     ({"keep_labels": [-1]}, ArgumentError, "prepare: keep_labels must hold labels >= 0"),
     ({"keep_labels": ["liver"]}, ArgumentTypeError, "prepare: keep_labels must be a label"),
     ({"spacing_mm": "2"}, ArgumentTypeError, "prepare: spacing_mm must be None or a positive"),
     ({"spacing_mm": 0}, ArgumentError, "prepare: spacing_mm must be None or a positive number"),
     ({"hu_offset": float("nan")}, ArgumentError, "prepare: hu_offset must be None or a finite"),
     ({"hu_offset": True}, ArgumentTypeError, "prepare: hu_offset must be None or a finite"),
     ({"progress": 5}, ArgumentTypeError, "prepare: progress must be a function")],
    ids=["array-ct", "empty-ct", "empty-segmentation", "array-segmentation", "no-preset",
         "number-groups", "string-flag", "negative-label", "name-label", "string-spacing",
         "zero-spacing", "nan-offset", "bool-offset", "number-progress"])
def test_prepare_refuses_bad_arguments(ct: Volume, labels: Volume, changes: dict, error: type,
                                       message: str) -> None:
    arguments = {"ct": ct, "segmentation": labels, "preset": "CT-Bone", **changes}
    with pytest.raises(error) as caught:
        prepare(**arguments)
    assert str(caught.value).startswith(message), str(caught.value)
    assert isinstance(caught.value, RenderFMError)  # one line in the CLI and Slicer


def test_prepare_takes_numpy_numbers(ct: Volume, labels: Volume,
                                     gaussians: SixDGaussians) -> None:
    kept = prepare(ct, labels, "CT-Bone", keep_labels=np.int64(VERTEBRA), hu_offset=np.float32(0))
    assert len(kept) == len(gaussians)


# --- render, shown, default_camera --------------------------------------------------------------


def test_render_takes_numpy_integers_and_a_camera_dict(gaussians: SixDGaussians,
                                                       camera: Camera) -> None:
    expected = render(gaussians, camera, SIZE).rgb
    assert torch.equal(render(gaussians, camera, np.int64(SIZE)).rgb, expected)
    assert torch.equal(render(gaussians, camera, (np.int32(SIZE), SIZE)).rgb, expected)
    assert torch.equal(render(gaussians, camera.to_dict(), SIZE).rgb, expected)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [(lambda g, c: render(g, None, SIZE), ArgumentTypeError,
      "render: camera must be a Camera or a dict of its terms"),
     (lambda g, c: render(np.zeros(3), c, SIZE), ArgumentTypeError,
      "render: gaussians must be SixDGaussians"),
     (lambda g, c: render(g, c, 64.0), ArgumentTypeError,
      "render: size must be an integer number of pixels"),
     (lambda g, c: render(g, c, True), ArgumentTypeError, "render: size must be an integer"),
     (lambda g, c: render(g, c, (SIZE, 0)), ArgumentError, "render: image size must be 1..8192"),
     (lambda g, c: render(g, c, SIZE, background=(5, -1, 0)), ArgumentError,
      "render: background must be 3 numbers in 0..1 (red, green, blue), not (5.0, -1.0, 0.0)"),
     (lambda g, c: render(g, c, SIZE, background="white"), ArgumentTypeError,
      "render: background must be 3 numbers"),
     (lambda g, c: render(g, c, SIZE, background=(1, 1)), ArgumentTypeError,
      "render: background must be 3 numbers"),
     (lambda g, c: render(g, c, SIZE, hidden_groups=[1]), ArgumentTypeError,
      "render: hidden_groups must be a group name or a list of them"),
     (lambda g, c: render(g, c, SIZE, visible_labels="31"), ArgumentTypeError,
      "render: visible_labels must be a label or a list of labels"),
     (lambda g, c: shown(g, 7), ArgumentTypeError, "shown: hidden_groups must be a group name"),
     (lambda g, c: default_camera(None), ArgumentTypeError,
      "default_camera: gaussians must be SixDGaussians"),
     (lambda g, c: default_camera(g, azimuth=float("inf")), CameraError,
      "orbit azimuth must be a finite number of degrees, not inf"),
     (lambda g, c: default_camera(g, view_angle=0), CameraError,
      "camera view angle must be between 0.1 and 179 degrees, not 0")],
    ids=["no-camera", "array-gaussians", "float-size", "bool-size", "zero-height",
         "background-range", "background-word", "background-2", "number-group", "string-labels",
         "shown-number", "no-gaussians", "infinite-azimuth", "zero-view-angle"])
def test_render_refuses_bad_arguments(gaussians: SixDGaussians, camera: Camera, call,
                                      error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        call(gaussians, camera)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_single_hidden_group_is_one_group_not_letters(gaussians: SixDGaussians,
                                                        camera: Camera) -> None:
    assert len(shown(gaussians, "skeleton")) == 0 < len(gaussians)
    hidden = render(gaussians, camera, SIZE, hidden_groups="skeleton")
    assert torch.equal(hidden.rgb, render(gaussians, camera, SIZE, hidden_groups=["skeleton"]).rgb)
    assert float(hidden.alpha.sum()) == 0.0
    assert len(shown(gaussians, visible_labels=VERTEBRA)) == len(gaussians)


# --- SixDGaussians.load -----------------------------------------------------------------------


def test_load_refuses_bad_arguments(gaussians: SixDGaussians, tmp_path: Path) -> None:
    with pytest.raises(ArgumentTypeError, match="SixDGaussians.load: path must be a path"):
        SixDGaussians.load(None)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="SixDGaussians.load: path is an empty path"):
        SixDGaussians.load("")
    path = tmp_path / "model.safetensors"
    gaussians.save(path)
    with pytest.raises(RenderFMError, match="unknown device 'tpu'"):
        SixDGaussians.load(path, device="tpu")


# --- cameras -----------------------------------------------------------------------------------

TERMS = {"position": (0.0, -500.0, 0.0), "focal_point": (0.0, 0.0, 0.0),
         "view_up": (0.0, 0.0, 1.0), "view_angle": 30.0}
BAD_CAMERAS = {
    "far": ({"position": (0.0, -1e300, 0.0)}, "camera position [0.0, -1e+300, 0.0] lies more "
                                              "than 1e+06 mm (1 km) from the RAS origin"),
    "far-focus": ({"focal_point": (2e6, 0.0, 0.0)}, "camera focal_point"),
    "tiny-angle": ({"view_angle": 1e-6}, "camera view angle must be between 0.1 and 179 "
                                         "degrees, not 1e-06"),
    "wide-angle": ({"view_angle": 179.5}, "camera view angle must be between 0.1 and 179"),
    "bool-angle": ({"view_angle": True}, "camera terms must be numbers: view_angle is True"),
    "string-angle": ({"view_angle": "30"}, "camera terms must be numbers: view_angle is '30'"),
    "bool-position": ({"position": (True, -500, 0)}, "camera terms must be numbers: position is "
                                                     "True"),
    "up-along-view": ({"view_up": (0.0, 1.0, 1e-9)}, "camera view up is zero or parallel"),
}


@pytest.mark.parametrize("name", list(BAD_CAMERAS))
def test_camera_refuses_non_physical_terms(name: str) -> None:
    changes, message = BAD_CAMERAS[name]
    with pytest.raises(CameraError) as caught:
        Camera(**{**TERMS, **changes})
    assert str(caught.value).startswith(message), str(caught.value)


def test_camera_takes_numpy_numbers_and_stores_floats() -> None:
    camera = Camera(np.array([0.0, -500.0, 0.0]), [np.int64(0), 0, 0], (0, np.float32(0), 1),
                    np.float64(30))
    assert camera == Camera(**TERMS)
    assert all(type(v) is float for v in (*camera.position, *camera.view_up, camera.view_angle))


@pytest.mark.parametrize("name", ["far", "tiny-angle", "bool-angle", "string-angle"])
def test_camera_file_refuses_non_physical_terms(name: str, tmp_path: Path) -> None:
    changes, message = BAD_CAMERAS[name]
    path = tmp_path / "camera.json"
    path.write_text(json.dumps({**TERMS, **changes}))
    with pytest.raises(CameraError) as caught:
        read_camera_json(path)
    assert str(caught.value).startswith(f"camera file {path}: {message}"), str(caught.value)


@pytest.mark.parametrize("name", ["far", "bool-angle"])
def test_cli_refuses_non_physical_camera_file(name: str, gaussians: SixDGaussians,
                                              tmp_path: Path) -> None:
    import test_cli  # its helpers; skips where its shared data is missing

    model, camera = tmp_path / "model.safetensors", tmp_path / "camera.json"
    gaussians.save(model)
    camera.write_text(json.dumps({**TERMS, **BAD_CAMERAS[name][0]}))
    result = test_cli.renderfm("render", model, "--camera", camera, "--size", SIZE,
                               "-o", tmp_path / "x.png", cwd=tmp_path)
    assert result.returncode == 2
    assert test_cli.assert_user_error(result).startswith(
        f"renderfm: error: camera file {camera}: {BAD_CAMERAS[name][1]}")
    assert not (tmp_path / "x.png").exists()
