"""The 'dvr' ground-truth renderer: closed forms, step independence, grid geometry, camera
convention, orientation on the bundled CT, headlight shading, and agreement with the Gaussian
renderer."""

import math

import numpy as np
import pytest
import torch

from RenderFMLib.api import default_camera, prepare, render
from RenderFMLib.camera import Camera, orbit_camera
from RenderFMLib.errors import PresetError, RenderFMError
from RenderFMLib.evaluation.metrics import ssim
from RenderFMLib.groundtruth import dvr
from RenderFMLib.groundtruth.dvr import DvrScene, render_dvr
from RenderFMLib.resources import resource_path
from RenderFMLib.transfer import Preset
from RenderFMLib.volume import Volume, read_ct, read_segmentation

WHITE = ((-3000.0, 1.0, 1.0, 1.0), (3000.0, 1.0, 1.0, 1.0))
BACKENDS = ["cpu", "torch"]  # dvr_march.py: the C++ marcher and its PyTorch reference
FLAT = ((0.0, 1.0), (255.0, 1.0))


def _preset(opacity, color=WHITE, shade=False, ambient=0.1, diffuse=0.9, specular=0.0,
            power=10.0) -> Preset:
    return Preset("test", opacity, FLAT, color, shade, ambient, diffuse, specular, power)


def _grid(shape_kji, spacing, rotation=None, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """ijk_to_ras of a grid of `shape_kji` voxels with `spacing` (i, j, k) mm, centred on
    `centre` (RAS mm), axes along the columns of `rotation` (default: R, A, S)."""
    matrix = np.eye(4)
    matrix[:3, :3] = (np.eye(3) if rotation is None else rotation) * np.asarray(spacing, float)
    half = (np.array(shape_kji[::-1], dtype=float) - 1) / 2
    matrix[:3, 3] = np.asarray(centre) - matrix[:3, :3] @ half
    return matrix


def _sampled(function, ijk_to_ras, shape_kji) -> Volume:
    """A Volume holding function(ras [..., 3]) -> HU at every voxel centre."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape_kji], indexing="ij")
    ras = np.stack([i, j, k], axis=-1) @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    return Volume(torch.from_numpy(function(ras).astype(np.float32)), ijk_to_ras)


def _axis_camera(axis: int, distance: float = 400.0) -> Camera:
    """A camera on the +axis side of the origin looking at it (view angle 20 degrees)."""
    position = np.zeros(3)
    position[axis] = distance
    up = np.zeros(3)
    up[(axis + 1) % 3] = 1.0
    return Camera(tuple(position), (0.0, 0.0, 0.0), tuple(up), 20.0)


def _projection(camera: Camera, points, width: int, height: int) -> np.ndarray:
    """[..., 2] (u, v) in continuous pixel coordinates (pixel (u, v) spans u..u+1) of RAS points
    [..., 3]."""
    points = np.asarray(points, dtype=float)
    in_camera = points @ camera.world_to_camera()[:3, :3].T + camera.world_to_camera()[:3, 3]
    pixels = (in_camera / in_camera[..., 2:]) @ camera.intrinsics(width, height).T
    return pixels[..., :2]


def _centroid(weights: np.ndarray) -> np.ndarray:
    """(u, v) of the weighted mean of pixel centres (u + 0.5, v + 0.5)."""
    rows, cols = np.mgrid[: weights.shape[0], : weights.shape[1]]
    total = weights.sum()
    return np.array([((cols + 0.5) * weights).sum(), ((rows + 0.5) * weights).sum()]) / total


# ---------------------------------------------------------------- closed forms ----------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_homogeneous_box_gives_the_closed_form_alpha(axis, backend):
    """Constant HU everywhere, opacity a = 0.02 per mm: the central ray (on the optical axis of an
    odd-sized image) crosses the voxel-centre box, (n - 1) spacing mm along the axis, so
    alpha = 1 - (1 - a)^L exactly: the samples split L evenly. float32 leaves ~1e-6."""
    shape, spacing = (20, 30, 40), (2.5, 2.0, 1.5)  # (K, J, I) voxels; i, j, k mm
    ct = Volume(torch.full(shape, 100.0), _grid(shape, spacing))
    background = (0.2, 0.4, 0.6)
    frame = render_dvr(ct, _preset(((-3000.0, 0.02), (3000.0, 0.02))), _axis_camera(axis), 33,
                       step_mm=0.7, background=background, backend=backend)
    length = (shape[::-1][axis] - 1) * spacing[axis]
    expected = 1 - 0.98**length
    assert frame.alpha[16, 16].item() == pytest.approx(expected, abs=1e-5)
    over = expected + (1 - expected) * np.array(background)  # white over the background
    assert frame.rgb[16, 16].numpy() == pytest.approx(over, abs=1e-5)
    # The image corners see past the box (70 mm half-width at 400 mm, the box < 30 mm).
    assert frame.alpha[0, 0].item() == 0 and frame.depth[0, 0].item() == 0
    assert frame.rgb[0, 0].numpy() == pytest.approx(background, abs=1e-6)
    # The expected depth of a homogeneous slab [z0, z0 + L] of extinction s = -ln(1 - a):
    # z0 + 1/s - L e^(-sL) / (1 - e^(-sL)); the midpoint rule keeps it within ds^2 terms.
    s, z0 = -math.log(0.98), 400.0 - length / 2
    depth = z0 + 1 / s - length * math.exp(-s * length) / (1 - math.exp(-s * length))
    assert frame.depth[16, 16].item() == pytest.approx(depth, abs=0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_camera_inside_the_volume_marches_from_the_camera(backend):
    shape = (21, 21, 21)
    ct = Volume(torch.full(shape, 100.0), _grid(shape, (2.0, 2.0, 2.0)))
    camera = Camera((0.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0), 20.0)
    frame = render_dvr(ct, _preset(((-3000.0, 0.02), (3000.0, 0.02))), camera, 33,
                       backend=backend)
    assert frame.alpha[16, 16].item() == pytest.approx(1 - 0.98**20.0, abs=1e-5)  # 20 mm to -S


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("step", [0.25, 0.5, 1.0])
def test_slab_in_air_gives_the_closed_form_alpha(step, backend):
    """A slab of 1000 HU, 10 voxels of 2 mm thick along S, in -1000 HU air; opacity a = 0.05 per
    mm at and above 0 HU (a step). Trilinear HU crosses 0 half-way between the slab's outer voxel
    centres and the air's, so the opaque path is L = 10 x 2 = 20 mm. Each of the two boundaries
    falls inside one sample's piece (ds <= step), so the marched path is within L +- ds. The
    CPU marcher skips the air's cells (all voxels below 0 HU)."""
    shape = (40, 9, 9)
    hu = torch.full(shape, -1000.0)
    hu[15:25] = 1000.0
    ct = Volume(hu, _grid(shape, (2.0, 2.0, 2.0)))
    preset = _preset(((-3000.0, 0.0), (0.0, 0.0), (0.0, 0.05), (3000.0, 0.05)))
    alpha = render_dvr(ct, preset, _axis_camera(2), 33, step_mm=step,
                       backend=backend).alpha[16, 16].item()
    low, high = 1 - 0.95 ** (20.0 - step), 1 - 0.95 ** (20.0 + step)
    assert low <= alpha <= high
    assert alpha == pytest.approx(1 - 0.95**20.0, abs=0.5 * (high - low))


@pytest.fixture(scope="module")
def sample_ct() -> Volume:
    return read_ct(resource_path("sample", "ct.nii.gz"))


def test_result_does_not_depend_on_the_step(sample_ct):
    """Opacity correction: halving or doubling the 1.5 mm default step keeps the image. Measured
    on the bundled CT, CT-Bone, 64 px: mean |d alpha| 0.0004 (0.75 mm) and 0.0008 (3 mm), SSIM of
    the RGB 0.9998 and 0.9984 (single pixels at thin edges move by up to 0.11). With alpha = a
    per sample instead (no correction): 0.017 and 0.032, SSIM 0.963 and 0.954."""
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 30, 10)
    frames = [render_dvr(sample_ct, "CT-Bone", camera, 64, step_mm=s) for s in (1.5, 0.75, 3.0)]
    reference = frames[0]
    for frame, mean_tol, ssim_min in zip(frames[1:], (0.002, 0.004), (0.999, 0.995)):
        assert (frame.alpha - reference.alpha).abs().mean().item() < mean_tol
        assert ssim(frame.rgb.numpy(), reference.rgb.numpy()) > ssim_min


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stop_only_drops_what_is_left_behind_opaque_pixels(sample_ct, backend):
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 0, 0)
    stopped = render_dvr(sample_ct, "CT-Bone", camera, 48, backend=backend)
    full = render_dvr(sample_ct, "CT-Bone", camera, 48, early_stop=1.0, backend=backend)
    # A ray stops once its transmittance is below 0.001: at most that much light is left out.
    assert (stopped.rgb - full.rgb).abs().max().item() <= 1e-3 + 1e-5
    assert (stopped.alpha - full.alpha).abs().max().item() <= 1e-3 + 1e-5
    # ... and it does stop: behind almost every opaque pixel some coverage is left out.
    opaque = full.alpha > 0.9995
    assert opaque.float().mean() > 0.1
    assert (stopped.alpha[opaque] < full.alpha[opaque]).float().mean() > 0.9
    assert stopped.alpha[opaque].min().item() >= 0.999 - 1e-6  # not before reaching 0.999


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stop_ends_the_ray_at_the_first_sample_past_it(backend):
    """The homogeneous box above, seen along R (58.5 mm between voxel centres), opacity 0.02 per
    mm: each of the N = ceil(58.5 / 0.7) samples lets 0.98^ds through (ds = 58.5 / N). With
    early_stop 0.5 the central ray ends after the first k samples with 0.98^(k ds) <= 0.5."""
    shape, spacing = (20, 30, 40), (2.5, 2.0, 1.5)
    ct = Volume(torch.full(shape, 100.0), _grid(shape, spacing))
    frame = render_dvr(ct, _preset(((-3000.0, 0.02), (3000.0, 0.02))), _axis_camera(0), 33,
                       step_mm=0.7, early_stop=0.5, backend=backend)
    ds = 58.5 / math.ceil(58.5 / 0.7)
    k = math.ceil(math.log(0.5) / (ds * math.log(0.98)))
    expected = 1 - 0.98 ** (k * ds)  # 0.505; 0.69 through the whole box
    assert 0.98 ** ((k - 1) * ds) > 0.5 + 1e-3  # sample k - 1 is clearly short of the stop
    assert frame.alpha[16, 16].item() == pytest.approx(expected, abs=1e-5)  # float32: ~1e-6


# ---------------------------------------------------------------- geometry --------------------

def _two_blobs(ras: np.ndarray) -> np.ndarray:
    """Two smooth blobs (HU up to 1000) in -1000 HU air: asymmetric, air at every grid border."""
    def blob(centre, sigma):
        return np.exp(-np.sum((ras - centre) ** 2, axis=-1) / (2 * sigma**2))
    return -1000.0 + 2000.0 * (blob([12.0, -6.0, 4.0], 11.0) + 0.8 * blob([-20.0, 10.0, -8.0], 8.0))


def _rotation(angles_degrees) -> np.ndarray:
    """Rotation about R, then A, then S by the given angles (degrees)."""
    result = np.eye(3)
    for axis, angle in enumerate(np.radians(angles_degrees)):
        c, s = math.cos(angle), math.sin(angle)
        turn = np.eye(3)
        a, b = [n for n in range(3) if n != axis]
        turn[a, a], turn[a, b], turn[b, a], turn[b, b] = c, -s, s, c
        result = turn @ result
    return result


def test_oblique_anisotropic_grid_renders_like_its_isotropic_twin():
    """The same continuous phantom sampled on an oblique grid of 1.0 x 1.5 x 2.5 mm voxels and on
    an axis-aligned 1.5 mm grid: HU, gradients (the shading) and the ray box all go through
    ijk_to_ras, so the renders agree up to interpolation error (measured: SSIM 0.99995, mean
    |d rgb| 0.0002, max 0.04; the oblique grid read as axis-aligned scores SSIM 0.81)."""
    preset = _preset(((-3000.0, 0.0), (-200.0, 0.0), (500.0, 0.3), (3000.0, 0.3)),
                     color=((-200.0, 0.9, 0.5, 0.3), (600.0, 1.0, 1.0, 0.9)), shade=True,
                     specular=0.3)
    oblique_shape = (64, 88, 130)  # K, J, I: 130 x 1.0, 88 x 1.5, 64 x 2.5 mm, about 130 mm
    oblique = _grid(oblique_shape, (1.0, 1.5, 2.5), _rotation((25.0, -15.0, 35.0)), (2, -1, 3))
    iso_shape = (100, 100, 100)
    twins = [_sampled(_two_blobs, oblique, oblique_shape),
             _sampled(_two_blobs, _grid(iso_shape, (1.5, 1.5, 1.5)), iso_shape)]
    camera = orbit_camera(np.zeros(3), 60.0, 40.0, 20.0)
    a, b = (render_dvr(ct, preset, camera, 64, step_mm=0.75, ambient_light=1.0) for ct in twins)
    assert a.alpha.max().item() > 0.9  # the phantom is in view and opaque
    assert ssim(a.rgb.numpy(), b.rgb.numpy()) > 0.999
    assert (a.rgb - b.rgb).abs().mean().item() < 0.002
    assert (a.alpha - b.alpha).abs().mean().item() < 0.002


def test_blob_appears_where_the_camera_projects_it():
    """A small blob at a known RAS point lands on the pixel that world_to_camera + intrinsics
    predict (pixel centres at u + 0.5), in a non-square image seen from an oblique camera."""
    point = np.array([14.0, -9.0, 6.0])
    shape = (60, 60, 60)
    ijk_to_ras = _grid(shape, (1.0, 1.0, 1.0), centre=(0.0, 0.0, 0.0))
    ct = _sampled(lambda ras: 1000.0 * np.exp(-np.sum((ras - point) ** 2, -1) / 8.0), ijk_to_ras,
                  shape)
    camera = orbit_camera(np.zeros(3), 45.0, 35.0, 25.0)
    width, height = 96, 72
    calls = []
    frame = render_dvr(ct, _preset(((0.0, 0.0), (1000.0, 0.5))), camera, (width, height),
                       progress=lambda fraction, message: calls.append(fraction))
    assert frame.alpha.shape == (height, width) and calls[-1] == 1.0
    found = _centroid(frame.alpha.numpy())
    expected = _projection(camera, point, width, height)
    assert np.abs(found - expected).max() < 0.5, (found, expected)


@pytest.fixture(scope="module")
def liver_only(sample_ct) -> Volume:
    """The bundled CT with 1000 HU in the liver (label 5) and -1000 HU everywhere else."""
    labels = read_segmentation(resource_path("sample", "segmentation.nii.gz"), sample_ct)
    return Volume(torch.where(labels.array == 5, 1000.0, -1000.0), sample_ct.ijk_to_ras)


def test_anterior_view_puts_patient_right_on_screen_left(liver_only):
    """The liver lies on the patient's right and in the upper abdomen: in the anterior view it is
    left of centre and above it. An independent projection (each liver voxel adds 3 mm of opacity
    0.2 per mm at the pixel its centre projects to) puts it at the same place: centroids measured
    0.27 px apart, IoU of the half-opaque regions 0.83 at 64 px (mirrored left-right: 0.30)."""
    camera = orbit_camera(liver_only.center_ras(), liver_only.bounding_radius(), 0.0, 0.0)
    size = 64
    alpha = render_dvr(liver_only, _preset(((0.0, 0.0), (0.0, 0.2), (3000.0, 0.2))), camera,
                       size).alpha.numpy()
    found = _centroid(alpha)
    assert found[0] < size / 2 - 3 and found[1] < size / 2
    ras = liver_only.voxel_to_ras(np.argwhere(liver_only.array.numpy() > 0)[:, ::-1])
    u, v = np.floor(_projection(camera, ras, size, size)).astype(int).T
    log_t = np.zeros((size, size))
    np.add.at(log_t, (v, u), 3.0 * math.log(0.8))
    projected = 1 - np.exp(log_t)
    assert np.abs(found - _centroid(projected)).max() < 0.5
    ours, theirs = alpha > 0.5, projected > 0.5
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.75


# ---------------------------------------------------------------- shading ---------------------

def _sphere() -> Volume:
    """A ball of radius 30 mm (1000 HU inside, -1000 outside, a 2 mm soft edge), 1.5 mm voxels."""
    shape = (61, 61, 61)
    ijk_to_ras = _grid(shape, (1.5, 1.5, 1.5), centre=(5.0, -3.0, 2.0))
    def ball(ras):
        return -1000.0 + 2000.0 / (1.0 + np.exp((np.linalg.norm(ras - [5.0, -3.0, 2.0], axis=-1)
                                                  - 30.0) / 2.0))
    return _sampled(ball, ijk_to_ras, shape)


def test_headlight_makes_a_sphere_brightest_where_it_faces_the_camera():
    """Lit from the camera, a ball is brightest where its surface faces the camera: the
    projection of its centre (the camera is oblique, so a light fixed in RAS would move it)."""
    ball = _sphere()
    preset = _preset(((-3000.0, 0.0), (0.0, 0.0), (0.0, 0.5), (3000.0, 0.5)),
                     color=((-3000.0, 0.8, 0.6, 0.5), (3000.0, 0.8, 0.6, 0.5)), shade=True,
                     ambient=0.1, diffuse=0.9)
    camera = orbit_camera(np.array([5.0, -3.0, 2.0]), 45.0, 130.0, -35.0)
    size = 65
    shaded = render_dvr(ball, preset, camera, size, step_mm=0.75)
    luminance = shaded.rgb.numpy().mean(-1)
    row, col = np.unravel_index(np.argmax(luminance), luminance.shape)
    expected = _projection(camera, [5.0, -3.0, 2.0], size, size)
    assert np.hypot(col + 0.5 - expected[0], row + 0.5 - expected[1]) <= 1.5
    # The rim (grazing light) is much darker than the centre; without shading all is flat.
    assert luminance[row, col] > 3 * luminance[32, 8:12].mean()
    flat = render_dvr(ball, Preset(**{**preset.to_dict(), "shade": False}), camera, size,
                      step_mm=0.75)
    assert (flat.rgb - shaded.rgb).abs().mean().item() > 0.05
    assert flat.alpha.numpy() == pytest.approx(shaded.alpha.numpy(), abs=1e-6)  # shading is colour
    # Slicer's headlight has no ambient light (0, the default); a full one adds ambient x rgb.
    lit = render_dvr(ball, preset, camera, size, step_mm=0.75, ambient_light=1.0)
    gain = lit.rgb[row, col] / shaded.rgb[row, col]
    assert gain.numpy() == pytest.approx([(0.1 + 0.9) / 0.9] * 3, rel=0.02)


def test_specular_adds_white(sample_ct):
    """The specular term is added in white, after the colour: it lifts blue (the weakest channel
    of CT-Bone's colours) more, relative to itself, than red."""
    camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), 0, 0)
    bone = Preset.from_dict({**_bone().to_dict(), "specular": 0.0})
    matte = render_dvr(sample_ct, bone, camera, 48, ambient_light=1.0).rgb
    shiny = render_dvr(sample_ct, _bone(), camera, 48, ambient_light=1.0).rgb
    lifted = (shiny - matte).clamp_min(0).sum((0, 1))
    relative = lifted / matte.sum((0, 1))
    assert lifted.min().item() > 0 and relative[2] > relative[0]


def test_a_scene_keeps_its_field_and_each_frame_is_a_fresh_scenes(sample_ct):
    """A DvrScene writes each frame's shading into the tensor it keeps: frames from two cameras
    in turn, the first again last, are bit for bit those of a new scene per frame (no light of
    an earlier frame left over), and the tensor is the same one throughout."""
    scene = DvrScene(sample_ct, "CT-Bone", backend="cpu")
    cameras = [orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), azimuth, 20)
               for azimuth in (0, 130, 0)]
    kept = []
    for camera in cameras:
        frame = scene.render(camera, 48)
        fresh = render_dvr(sample_ct, "CT-Bone", camera, 48, backend="cpu")
        assert torch.equal(frame.rgb, fresh.rgb) and torch.equal(frame.alpha, fresh.alpha)
        kept.append(scene._channels.data_ptr())
    assert len(set(kept)) == 1


@pytest.mark.parametrize("power", [10.0, 0.5, 0.0])
def test_voxel_shading_is_the_headlight_formula_per_voxel(power):
    """The field's diffuse and specular channels, written in place, against the formula in
    float64 voxel by voxel: D = ambient_light x ambient + diffuse |n.l|, S = specular |n.l|^p,
    and a flat voxel (zero normal) gets D = ambient_light x ambient and S = 0, also for p = 0
    (where |n.l|^0 would be 1). float32 rounding: 1e-6."""
    generator = torch.Generator().manual_seed(0)
    normals = torch.randn(3, 4, 5, 6, generator=generator)
    normals = normals / normals.norm(dim=0)
    normals[:, 1, 2] = 0.0  # a row of flat voxels
    light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    preset = _preset(((0.0, 1.0), (1.0, 1.0)), shade=True, ambient=0.2, diffuse=0.7,
                     specular=0.4, power=power)
    out = torch.full((2, 4, 5, 6), float("nan"))
    dvr._voxel_shading(preset, normals, light, 0.5, out)
    cosine = np.abs(np.einsum("c...,c->...", normals.double().numpy(), light))
    flat = np.zeros((4, 5, 6), dtype=bool)
    flat[1, 2] = True
    expected_diffuse = 0.5 * 0.2 + 0.7 * cosine
    expected_specular = np.where(flat, 0.0, 0.4 * cosine ** power)
    assert out[0].numpy() == pytest.approx(expected_diffuse, abs=1e-6)
    assert out[1].numpy() == pytest.approx(expected_specular, abs=1e-6)
    assert np.all(out[1].numpy()[flat] == 0.0) and np.all(out[0].numpy()[flat] == np.float32(0.1))


def _bone() -> Preset:
    from RenderFMLib.transfer import load_preset

    return load_preset("CT-Bone")


# ---------------------------------------------------------------- agreement --------------------

def test_silhouette_agrees_with_the_gaussian_renderer(sample_ct):
    """Anterior view of the bundled CT, CT-Bone, 128 px: where each renderer is at least half
    opaque. Measured IoU 0.963; the Gaussian render mirrored left-right scores 0.901 and shifted
    by 2 px 0.919, so 0.94 catches both."""
    gaussians = prepare(sample_ct, preset="CT-Bone")
    camera = default_camera(gaussians)
    ours = render_dvr(sample_ct, "CT-Bone", camera, 128).alpha.numpy() > 0.5
    theirs = render(gaussians, camera, 128).alpha.numpy() > 0.5
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou > 0.94, iou


# ---------------------------------------------------------------- scenes and windows ----------

def test_a_scene_renders_each_camera_and_window_as_render_dvr_does(sample_ct):
    """One DvrScene (normals computed once) drawn from two cameras (two headlights) gives each
    render_dvr frame, and a window of a frame gives those pixels: within 1e-6 (the same rays
    and samples; the PyTorch marcher's passes are cut elsewhere, which reorders float32
    products of transmittance)."""
    scene = dvr.DvrScene(sample_ct, _bone())
    for azimuth in (0.0, 130.0):
        camera = orbit_camera(sample_ct.center_ras(), sample_ct.bounding_radius(), azimuth, 20)
        whole = render_dvr(sample_ct, _bone(), camera, (96, 80))
        again = scene.render(camera, (96, 80))
        window = scene.render(camera, (96, 80), window=(30, 12, 40))
        assert whole.alpha.max() > 0.9
        for got, want in ((again, whole), (window, whole)):
            rows = slice(12, 52) if got is window else slice(None)
            columns = slice(30, 70) if got is window else slice(None)
            for name in ("rgb", "alpha"):
                torch.testing.assert_close(getattr(got, name), getattr(want, name)[rows, columns],
                                           rtol=0, atol=1e-6)


@pytest.mark.parametrize("window", [(-1, 0, 8), (0, 0, 0), (60, 0, 8), (0, 40, 9)])
def test_a_window_outside_the_image_raises(window):
    ct = Volume(torch.zeros(4, 4, 4), np.eye(4))
    with pytest.raises(RenderFMError, match="window"):
        dvr.DvrScene(ct, _bone()).render(_axis_camera(2), (64, 48), window=window)


# ---------------------------------------------------------------- bad input -------------------

@pytest.mark.parametrize(
    "options, match",
    [
        ({"size": 0}, "image size"),
        ({"step_mm": 0.0}, "step"),
        ({"step_mm": float("nan")}, "step"),
        ({"early_stop": 0.0}, "early_stop"),
        ({"ambient_light": 2.0}, "ambient_light"),
        ({"background": (1.0, 0.0)}, "background"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_options_raise_renderfm_error(options, match):
    ct = Volume(torch.zeros(4, 4, 4), np.eye(4))
    arguments = {"size": 8, **options}
    size = arguments.pop("size")
    with pytest.raises(RenderFMError, match=match):
        render_dvr(ct, _bone(), _axis_camera(2), size, **arguments)


def test_unknown_preset_raises_preset_error():
    ct = Volume(torch.zeros(4, 4, 4), np.eye(4))
    with pytest.raises(PresetError, match="unknown preset"):
        render_dvr(ct, "CT-Bonez", _axis_camera(2), 8)
