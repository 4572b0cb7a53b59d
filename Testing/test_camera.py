"""Tests of RenderFMLib.camera: the VTK view transform, the OpenCV pinhole built on it, orbit
cameras in patient RAS, and CAMERA.json reading with its errors.

Every expected value is built here independently (hand geometry in numpy), never taken from a run
of the code. Computations are float64 throughout, so geometric identities are checked to 1e-9
(mm, pixels or unitless): rounding is ~1e-13 at these magnitudes (coordinates up to ~1000 mm),
and any convention error (a flipped axis, a wrong focal length) is off by millimetres or pixels.
"""

import json
import math

import numpy as np
import pytest

from RenderFMLib.camera import Camera, orbit, orbit_camera, read_camera_json
from RenderFMLib.errors import CameraError

TOL = 1e-9  # float64 rounding at coordinates <= ~1e3 is ~1e-13; see module docstring


def random_cameras(count: int, seed: int) -> list[Camera]:
    """Cameras at random positions in a ~1 m box, with view ups that are NOT orthogonal to the
    view direction (so orthogonalization is exercised) and random view angles."""
    rng = np.random.default_rng(seed)
    cameras = []
    while len(cameras) < count:
        position = rng.uniform(-500.0, 500.0, 3)
        focal = rng.uniform(-200.0, 200.0, 3)
        up = rng.normal(size=3)
        forward = (focal - position) / np.linalg.norm(focal - position)
        if np.linalg.norm(np.cross(forward, up)) < 0.2 * np.linalg.norm(up):
            continue  # too close to parallel for a meaningful test camera
        cameras.append(Camera(tuple(position), tuple(focal), tuple(up), rng.uniform(10.0, 120.0)))
    return cameras


def frame(camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Hand-built camera frame: unit direction of projection, orthogonalized unit view up,
    screen right = dop x up (VTK), and the position-focal distance."""
    position, focal = np.array(camera.position), np.array(camera.focal_point)
    distance = float(np.linalg.norm(focal - position))
    dop = (focal - position) / distance
    up = np.array(camera.view_up, dtype=np.float64)
    up = up - (up @ dop) * dop
    up /= np.linalg.norm(up)
    return dop, up, np.cross(dop, up), distance


def project(camera: Camera, width: int, height: int, point) -> np.ndarray:
    """Pixel coordinates (u, v) of a RAS point with the library's extrinsics and intrinsics."""
    cam = camera.world_to_camera() @ np.append(np.asarray(point, dtype=np.float64), 1.0)
    assert cam[2] > 0, "test point must be in front of the camera"
    uvw = camera.intrinsics(width, height) @ cam[:3]
    return uvw[:2] / uvw[2]


def apply(matrix: np.ndarray, point) -> np.ndarray:
    return (matrix @ np.append(np.asarray(point, dtype=np.float64), 1.0))[:3]


# ---------------------------------------------------------------- view matrix ----------------

@pytest.mark.parametrize("camera", random_cameras(6, seed=11))
def test_view_matrix_maps_the_camera_frame_to_the_eye_frame(camera):
    view = camera.view_matrix()
    dop, up, right, distance = frame(camera)
    np.testing.assert_array_equal(view[3], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(apply(view, camera.position), [0.0, 0.0, 0.0], atol=TOL)
    np.testing.assert_allclose(apply(view, camera.focal_point), [0.0, 0.0, -distance], atol=TOL)
    rotation = view[:3, :3]
    np.testing.assert_allclose(rotation @ up, [0.0, 1.0, 0.0], atol=TOL)
    np.testing.assert_allclose(rotation @ dop, [0.0, 0.0, -1.0], atol=TOL)
    np.testing.assert_allclose(rotation @ right, [1.0, 0.0, 0.0], atol=TOL)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=TOL)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=TOL)


def test_world_to_camera_is_the_vtk_eye_with_y_and_z_flipped():
    """OpenCV camera frame: x right, y down, z forward (DESIGN.md section 2)."""
    for camera in random_cameras(4, seed=12):
        dop, up, right, distance = frame(camera)
        extrinsics = camera.world_to_camera()
        np.testing.assert_allclose(apply(extrinsics, camera.focal_point), [0, 0, distance],
                                   atol=TOL)
        np.testing.assert_allclose(extrinsics[:3, :3] @ up, [0.0, -1.0, 0.0], atol=TOL)
        np.testing.assert_allclose(extrinsics[:3, :3] @ right, [1.0, 0.0, 0.0], atol=TOL)
        np.testing.assert_allclose(extrinsics[:3, :3] @ dop, [0.0, 0.0, 1.0], atol=TOL)


def test_view_matrix_matches_vtk_camera():
    vtk = pytest.importorskip("vtk", reason="vtk is not installed; VTK cross-check skipped")
    for camera in random_cameras(5, seed=13):
        vtk_camera = vtk.vtkCamera()
        vtk_camera.SetPosition(*camera.position)
        vtk_camera.SetFocalPoint(*camera.focal_point)
        vtk_camera.SetViewUp(*camera.view_up)
        vtk_camera.SetViewAngle(camera.view_angle)
        matrix = vtk_camera.GetViewTransformMatrix()
        expected = np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])
        # VTK builds the matrix in double through its own transform code: 1e-6 mm absolute is
        # 1e-9 relative to translations of ~1e3 mm, far below any convention error (>= mm).
        np.testing.assert_allclose(camera.view_matrix(), expected, atol=1e-6)


# ---------------------------------------------------------------- pinhole --------------------

WIDTH, HEIGHT = 320, 200  # non-square on purpose: cx = W/2 and cy = H/2 must not be swapped


@pytest.mark.parametrize("camera", random_cameras(3, seed=14))
def test_focal_point_projects_to_the_image_centre(camera):
    np.testing.assert_allclose(project(camera, WIDTH, HEIGHT, camera.focal_point),
                               [WIDTH / 2, HEIGHT / 2], atol=TOL)


@pytest.mark.parametrize("camera", random_cameras(3, seed=15))
def test_up_is_up_and_right_is_right_on_screen(camera):
    dop, up, right, distance = frame(camera)
    focal = np.array(camera.focal_point)
    u_up, v_up = project(camera, WIDTH, HEIGHT, focal + 0.1 * distance * up)
    assert v_up < HEIGHT / 2 - 1.0  # displaced along view up: above centre (smaller v)
    assert u_up == pytest.approx(WIDTH / 2, abs=TOL)
    u_right, v_right = project(camera, WIDTH, HEIGHT, focal + 0.1 * distance * right)
    assert u_right > WIDTH / 2 + 1.0  # displaced along dop x up: right of centre (larger u)
    assert v_right == pytest.approx(HEIGHT / 2, abs=TOL)


@pytest.mark.parametrize("view_angle", [30.0, 60.0])
def test_half_view_angle_reaches_the_image_edges(view_angle):
    """A point at exactly half the vertical view angle above the axis lands on the top edge
    (v = 0); horizontally the same focal length spans W/2 (square pixels)."""
    camera = Camera((12.0, -340.0, 25.0), (-3.0, 10.0, 40.0), (0.1, 0.2, 1.0), view_angle)
    dop, up, right, distance = frame(camera)
    half = math.radians(view_angle) / 2.0
    focal_px = (HEIGHT / 2.0) / math.tan(half)  # hand formula, DESIGN.md section 2
    intrinsics = camera.intrinsics(WIDTH, HEIGHT)
    np.testing.assert_allclose(intrinsics, [[focal_px, 0, WIDTH / 2], [0, focal_px, HEIGHT / 2],
                                            [0, 0, 1]], rtol=1e-12)
    top = np.array(camera.position) + distance * (math.cos(half) * dop + math.sin(half) * up)
    np.testing.assert_allclose(project(camera, WIDTH, HEIGHT, top), [WIDTH / 2, 0.0], atol=TOL)
    bottom = np.array(camera.position) + distance * (math.cos(half) * dop - math.sin(half) * up)
    np.testing.assert_allclose(project(camera, WIDTH, HEIGHT, bottom), [WIDTH / 2, HEIGHT],
                               atol=TOL)
    right_edge = np.array(camera.focal_point) + distance * math.tan(half) * WIDTH / HEIGHT * right
    np.testing.assert_allclose(project(camera, WIDTH, HEIGHT, right_edge), [WIDTH, HEIGHT / 2],
                               atol=TOL)


# ---------------------------------------------------------------- orbits ---------------------

CENTER = np.array([10.0, -20.0, 30.0])
RADIUS = 150.0


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    "azimuth, side",
    [(0.0, (0, 1, 0)),     # anterior: +A = +y
     (90.0, (-1, 0, 0)),   # from the patient's left: RAS +x is the patient's right
     (180.0, (0, -1, 0)),  # posterior
     (270.0, (1, 0, 0))],  # from the patient's right
)
def test_orbit_camera_azimuths_follow_ras(azimuth, side):
    camera = orbit_camera(CENTER, RADIUS, azimuth, 0.0)
    np.testing.assert_allclose(camera.focal_point, CENTER, atol=TOL)
    np.testing.assert_allclose(unit(np.array(camera.position) - CENTER), side, atol=TOL)
    dop, up, right, distance = frame(camera)
    np.testing.assert_allclose(up, [0.0, 0.0, 1.0], atol=TOL)  # superior is up at elevation 0


def test_anterior_view_is_radiological():
    """Anterior view: the patient's right (+x) on screen left, superior (+z) on top."""
    camera = orbit_camera(CENTER, RADIUS, 0.0, 0.0)
    u, v = project(camera, 256, 256, CENTER + [50.0, 0.0, 0.0])
    assert u < 128 - 1.0 and v == pytest.approx(128, abs=TOL)
    u, v = project(camera, 256, 256, CENTER + [0.0, 0.0, 50.0])
    assert v < 128 - 1.0 and u == pytest.approx(128, abs=TOL)


def test_left_lateral_view_has_anterior_on_screen_left():
    """Standing at the patient's left (-x) with the head up, the patient's front (+y) is on
    the viewer's left: screen right = dop x up = (+x) x (+z) = -y."""
    camera = orbit_camera(CENTER, RADIUS, 90.0, 0.0)
    u, _ = project(camera, 256, 256, CENTER + [0.0, 50.0, 0.0])
    assert u < 128 - 1.0


def test_positive_elevation_looks_down_from_superior():
    camera = orbit_camera(CENTER, RADIUS, 30.0, 35.0)
    offset = unit(np.array(camera.position) - CENTER)
    assert offset[2] == pytest.approx(math.sin(math.radians(35.0)), abs=TOL)
    # horizontal part still points along azimuth 30 (from anterior towards the patient's left)
    horizontal = unit(offset[:2])
    azimuth = math.radians(30.0)
    np.testing.assert_allclose(horizontal, [-math.sin(azimuth), math.cos(azimuth)], atol=TOL)
    dop, up, right, distance = frame(camera)
    assert up[2] > 0.5  # superior stays roughly up on screen


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 215.0])
def test_orbit_camera_straight_from_above_is_not_degenerate(azimuth):
    camera = orbit_camera(CENTER, RADIUS, azimuth, 90.0)
    np.testing.assert_allclose(unit(np.array(camera.position) - CENTER), [0, 0, 1], atol=TOL)
    dop, up, right, distance = frame(camera)
    # the given view up must be well away from the view direction (|sin| ~ 1, not ~ 0)
    assert np.linalg.norm(np.cross(dop, unit(camera.view_up))) > 0.99
    assert np.isfinite(camera.view_matrix()).all()
    # continuity: the up vector just below the pole is (nearly) the same
    near = orbit_camera(CENTER, RADIUS, azimuth, 89.9)
    assert unit(near.view_up) @ unit(camera.view_up) > 0.999


@pytest.mark.parametrize("view_angle", [30.0, 60.0])
@pytest.mark.parametrize("azimuth, elevation", [(0.0, 0.0), (123.0, -40.0), (300.0, 70.0)])
def test_orbit_camera_frames_the_bounding_sphere(view_angle, azimuth, elevation):
    """The cone from the camera tangent to the sphere has half-angle = half the view angle, so
    the sphere's silhouette touches the top and bottom image edges."""
    camera = orbit_camera(CENTER, RADIUS, azimuth, elevation, view_angle)
    assert camera.view_angle == view_angle
    distance = np.linalg.norm(np.array(camera.position) - CENTER)
    tangent_half_angle = math.asin(RADIUS / distance)
    assert tangent_half_angle == pytest.approx(math.radians(view_angle) / 2.0, abs=TOL)
    # the tangent point on the sphere, above the axis, projects onto the top edge
    dop, up, right, _ = frame(camera)
    tangent_length = math.sqrt(distance**2 - RADIUS**2)
    half = math.radians(view_angle) / 2.0
    tangent_point = np.array(camera.position) + tangent_length * (math.cos(half) * dop
                                                                   + math.sin(half) * up)
    assert np.linalg.norm(tangent_point - CENTER) == pytest.approx(RADIUS, rel=1e-12)
    np.testing.assert_allclose(project(camera, 100, 80, tangent_point), [50.0, 0.0], atol=TOL)


@pytest.mark.parametrize("radius", [0.0, -5.0, float("nan"), float("inf")])
def test_orbit_camera_rejects_a_bad_radius(radius):
    with pytest.raises(CameraError, match="radius"):
        orbit_camera(CENTER, radius, 0.0, 0.0)


@pytest.mark.parametrize("views", [1, 5, 8])
def test_orbit_gives_distinct_evenly_spaced_cameras(views):
    cameras = orbit(CENTER, RADIUS, views, elevation=20.0)
    assert len(cameras) == views
    positions = np.array([c.position for c in cameras])
    assert len({tuple(np.round(p, 6)) for p in positions}) == views
    distances = np.linalg.norm(positions - CENTER, axis=1)
    np.testing.assert_allclose(distances, distances[0], rtol=1e-12)
    np.testing.assert_allclose(distances[0], RADIUS / math.sin(math.radians(15.0)), rtol=1e-12)
    np.testing.assert_allclose(positions[0], orbit_camera(CENTER, RADIUS, 0.0, 20.0).position,
                               atol=TOL)
    # consecutive cameras are 360/views apart in azimuth (about the superior axis)
    flat = positions[:, :2] - CENTER[:2]
    angles = np.degrees(np.arctan2(flat[:, 1], flat[:, 0]))
    steps = (np.diff(angles) + 360.0) % 360.0
    np.testing.assert_allclose(steps, 360.0 / views, atol=1e-9)
    for camera in cameras:
        np.testing.assert_allclose(camera.focal_point, CENTER, atol=TOL)


# ---------------------------------------------------------------- CAMERA.json ----------------

TERMS = {"position": [1.5, -400.0, 20.0], "focal_point": [0.0, 0.0, 10.0],
         "view_up": [0.0, 0.0, 1.0], "view_angle": 42.0}


def test_to_dict_from_dict_round_trip():
    for camera in random_cameras(3, seed=16):
        terms = camera.to_dict()
        assert set(terms) == {"position", "focal_point", "view_up", "view_angle"}
        assert Camera.from_dict(json.loads(json.dumps(terms))) == camera


def test_from_dict_defaults_to_vtk_view_angle():
    terms = {k: v for k, v in TERMS.items() if k != "view_angle"}
    assert Camera.from_dict(terms).view_angle == 30.0


def test_read_camera_json_reads_a_valid_file(tmp_path):
    path = tmp_path / "CAMERA.json"
    path.write_text(json.dumps(TERMS))
    camera = read_camera_json(path)
    assert camera == Camera(tuple(TERMS["position"]), tuple(TERMS["focal_point"]),
                            tuple(TERMS["view_up"]), TERMS["view_angle"])
    assert read_camera_json(str(path)) == camera  # str paths too


def write(tmp_path, text: str):
    path = tmp_path / "camera.json"
    path.write_text(text)
    return path


def with_terms(**changes) -> str:
    terms = dict(TERMS)
    terms.update(changes)
    return json.dumps({k: v for k, v in terms.items() if v is not None})


@pytest.mark.parametrize(
    "text, message",
    [
        ("{\"position\": [0, 0, ", "not valid JSON"),
        ("[1, 2, 3]", "must hold a JSON object"),
        ("\"position\"", "must hold a JSON object"),
        (json.dumps({k: v for k, v in TERMS.items() if k != "focal_point"}),
         "missing 'focal_point'"),
        (json.dumps({k: v for k, v in TERMS.items() if k != "position"}), "missing 'position'"),
        (with_terms(position=[0, "abc", 0]), "must be numbers"),
        (with_terms(view_up="up"), "must be numbers"),
        (with_terms(view_angle="wide"), "must be numbers"),
        (json.dumps({**TERMS, "view_up": None}), "must be numbers"),
        (with_terms(position=[0, 0]), "3 numbers"),
        (with_terms(focal_point=[0, 0, 0, 1]), "3 numbers"),
        (with_terms(focal_point=TERMS["position"]), "coincide"),
        (with_terms(view_up=[-1.5, 400.0, -10.0]), "parallel"),  # = focal_point - position
        (with_terms(view_up=[0, 0, 0]), "zero or parallel"),
        (with_terms(view_angle=0), "view angle"),
        (with_terms(view_angle=180), "view angle"),
        (with_terms(view_angle=-10), "view angle"),
        ('{"position": [NaN, 0, 0], "focal_point": [0, 0, 0], "view_up": [0, 0, 1]}', "finite"),
        ('{"position": [0, 1, 0], "focal_point": [0, 0, 0], "view_up": [0, 0, Infinity]}',
         "finite"),
        ('{"position": [0, 1, 0], "focal_point": [0, 0, 0], "view_up": [0, 0, 1], '
         '"view_angle": NaN}', "finite"),
    ],
)
def test_read_camera_json_errors_are_clear(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(CameraError) as raised:
        read_camera_json(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)  # the user is told which file


def test_read_camera_json_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "CAMERA.json"
    with pytest.raises(CameraError, match="does not exist") as raised:
        read_camera_json(path)
    assert str(path) in str(raised.value)


def test_read_camera_json_binary_file(tmp_path):
    path = tmp_path / "camera.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(CameraError, match="not valid JSON"):
        read_camera_json(path)


@pytest.mark.parametrize(
    "changes, message",
    [({"position": (1.0, 2.0, 3.0), "focal_point": (1.0, 2.0, 3.0)}, "coincide"),
     ({"view_up": (0.0, 4.0, 0.0)}, "parallel"),
     ({"view_angle": 0.0}, "view angle"),
     ({"view_angle": 180.0}, "view angle"),
     ({"focal_point": (0.0, float("nan"), 0.0)}, "finite")],
)
def test_camera_constructor_rejects_bad_terms(changes, message):
    terms = {"position": (0.0, -10.0, 0.0), "focal_point": (0.0, 0.0, 0.0),
             "view_up": (0.0, 0.0, 1.0), "view_angle": 30.0, **changes}
    with pytest.raises(CameraError, match=message):
        Camera(**terms)
