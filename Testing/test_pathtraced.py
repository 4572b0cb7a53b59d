"""The Mitsuba path tracer (groundtruth/pathtraced.py): geometry, orientation, noise, silhouette.

Renders are small (32 to 64 px, few samples per pixel) and mostly of phantoms whose largest
extinction is low, because the cost follows extinction x path length. Silhouette tests trace one
scattering event (max_depth=2): alpha only depends on where camera rays first meet the medium.
"""

import functools
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from RenderFMLib.camera import Camera, orbit_camera
from RenderFMLib.errors import RenderFMError
from RenderFMLib.evaluation.metrics import psnr
from RenderFMLib.groundtruth import mitsuba_loader
from RenderFMLib.groundtruth import pathtraced as pt
from RenderFMLib.transfer import Preset, load_preset
from RenderFMLib.volume import Volume, read_ct

SAMPLE_CT = Path(__file__).resolve().parents[1] / "Resources" / "sample" / "ct.nii.gz"


@functools.lru_cache(maxsize=1)
def mitsuba_problem() -> str | None:
    """Why Mitsuba cannot render here (not installed, no usable libLLVM), or None."""
    try:
        mitsuba_loader.import_mitsuba(None)
    except RenderFMError as error:
        return str(error)
    return None


@pytest.fixture
def mitsuba() -> None:
    """Skips the test, saying why, where Mitsuba cannot render."""
    if mitsuba_problem() is not None:
        pytest.skip(f"Mitsuba cannot render here: {mitsuba_problem()}")


def preset(opacity: float = 0.5, rgb=(1.0, 1.0, 1.0)) -> Preset:
    """Air transparent, opacity per mm rising from 0 at 0 HU to `opacity` at 500 HU and above."""
    return Preset("phantom", ((-1000.0, 0.0), (0.0, 0.0), (500.0, opacity), (3000.0, opacity)),
                  ((0.0, 1.0), (255.0, 1.0)), ((-1000.0, *rgb), (3000.0, *rgb)),
                  False, 0.1, 0.9, 0.2, 10.0)


def blob_volume(ijk_to_ras: np.ndarray, shape, centres_ras, sigma_mm: float = 5.0) -> Volume:
    """-1000 HU with Gaussian bumps up to +1000 HU (sigma_mm wide) at the given RAS points."""
    k, j, i = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    ras = np.stack([i, j, k], -1) @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    bumps = sum(np.exp(-np.sum((ras - np.asarray(c)) ** 2, -1) / (2 * sigma_mm**2))
                for c in centres_ras)
    return Volume(torch.from_numpy(-1000.0 + 2000.0 * bumps).float(), ijk_to_ras)


def grid(spacing, rotation: np.ndarray, centre, shape) -> np.ndarray:
    """ijk_to_ras [4, 4] with the given spacing, direction matrix and grid centre (RAS mm)."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.asarray(spacing, dtype=np.float64)
    matrix[:3, 3] = np.asarray(centre) - matrix[:3, :3] @ ((np.array(shape[::-1]) - 1) / 2.0)
    return matrix


def rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    x = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * x + (1 - np.cos(angle)) * x @ x


def centroid(weights: np.ndarray) -> np.ndarray:
    """(u, v) weighted mean of pixel centres (u + 0.5, v + 0.5), in pixels."""
    v, u = np.mgrid[: weights.shape[0], : weights.shape[1]] + 0.5
    return np.array([(u * weights).sum(), (v * weights).sum()]) / weights.sum()


def projected(camera: Camera, point, width: int, height: int) -> np.ndarray:
    """(u, v) where camera.intrinsics and world_to_camera put a RAS point, in pixels."""
    eye = camera.world_to_camera() @ np.append(point, 1.0)
    uvw = camera.intrinsics(width, height) @ eye[:3]
    return uvw[:2] / uvw[2]


SHAPE = (20, 24, 28)  # (K, J, I)
BLOB = np.array([40.0, -25.0, 55.0])  # RAS mm, off the grid centre on every axis
CENTRE = np.array([10.0, -20.0, 30.0])
OBLIQUE = grid((4.0, 3.5, 5.0), rotation((1, 2, 3), 35.0), CENTRE, SHAPE)
MIRRORED = grid((4.0, 3.5, 5.0), rotation((1, 2, 3), 35.0) @ np.diag([-1.0, 1.0, 1.0]), CENTRE,
               SHAPE)  # OBLIQUE's voxels with i reversed: det < 0


@pytest.mark.parametrize("ijk_to_ras", [OBLIQUE, MIRRORED], ids=["det>0", "det<0"])
def test_blob_appears_where_the_camera_intrinsics_put_it(mitsuba, ijk_to_ras):
    # The blob lands about 9 px off the image centre on both axes; an oblique view up and an
    # oblique, anisotropic grid check the sensor, the grid placement and the mirroring. The
    # alpha centroid of a symmetric blob (sigma 5 mm, ~4.6 mm per pixel) should sit on its
    # projected centre up to sampling of the blob on the grid and noise (16 spp): measured
    # 0.01 and 0.14 px off; 1 px would mean a wrong convention (half-pixel, flip, fov axis).
    volume = blob_volume(ijk_to_ras, SHAPE, [BLOB])
    camera = Camera(tuple(CENTRE + [150.0, 380.0, 90.0]), (72.0, -17.0, 5.0), (0.3, -0.2, 1.0))
    image = pt.render_pathtraced(volume, preset(), camera, (64, 48), spp=16, max_depth=2)
    assert image.rgb.shape == (48, 64, 3) and image.alpha.shape == (48, 64)
    expected = projected(camera, BLOB, 64, 48)
    assert 8 < expected[0] < 56 and 8 < expected[1] < 40, "the blob should be well inside"
    assert np.abs(expected - [32, 24]).min() > 8, "and well off the image centre on both axes"
    np.testing.assert_allclose(centroid(image.alpha), expected, atol=1.0)


def test_a_negative_determinant_grid_is_mirrored_onto_the_same_voxels():
    volume = blob_volume(MIRRORED, SHAPE, [BLOB])
    sigma_t, albedo, ijk_to_ras = pt.medium_grids(volume, preset())
    assert np.linalg.det(ijk_to_ras[:3, :3]) > 0
    reference_sigma, _, reference_matrix = pt.medium_grids(
        Volume(volume.array.flip(2), OBLIQUE), preset())
    np.testing.assert_allclose(ijk_to_ras, reference_matrix, atol=1e-9)
    assert torch.equal(sigma_t, reference_sigma)
    assert albedo.shape == (*SHAPE, 3)


def test_medium_density_follows_the_per_millimetre_opacity_rule():
    # a = 0.5 per mm lets half the light through per mm: sigma_t = ln 2 per mm.
    volume = Volume(torch.full((4, 4, 4), 1000.0), np.diag([2.0, 2.0, 2.0, 1.0]))
    sigma_t, albedo, _ = pt.medium_grids(volume, preset(0.5, rgb=(0.5, 0.2, 1.0)), 3.0)
    torch.testing.assert_close(sigma_t, torch.full_like(sigma_t, 3.0 * np.log(2.0)))
    expected = pt.srgb_to_linear(torch.tensor([0.5, 0.2, 1.0]))
    torch.testing.assert_close(albedo[1, 2, 3], expected)
    opaque, _, _ = pt.medium_grids(volume, preset(1.0))
    assert opaque.max().item() == pytest.approx(-np.log(1 - pt.MAX_OPACITY), rel=1e-5)


def test_large_grids_are_halved_keeping_their_box(monkeypatch):
    monkeypatch.setattr(pt, "MAX_GRID_VOXELS", 1000)
    volume = blob_volume(OBLIQUE, (15, 16, 17), [CENTRE])
    sigma_t, albedo, ijk_to_ras = pt.medium_grids(volume, preset())
    assert tuple(sigma_t.shape) == (8, 8, 9) and tuple(albedo.shape) == (8, 8, 9, 3)
    fine = pt.medium_grids(volume, preset())[0]
    # The coarse grid starts at the same outer corner (odd sizes gain at most one fine voxel).
    np.testing.assert_allclose(ijk_to_ras @ [-0.5, -0.5, -0.5, 1], OBLIQUE @ [-0.5, -0.5, -0.5, 1])
    assert float(sigma_t.mean()) == pytest.approx(float(fine.mean()), rel=0.15)


@pytest.mark.parametrize("azimuth, right_on_screen", [(0.0, "left"), (180.0, "right")])
def test_patient_right_is_on_screen_left_from_the_front(mitsuba, azimuth, right_on_screen):
    # A blob at the patient's right (+R) and superior (+S), on a det < 0 grid.
    ijk_to_ras = grid((4.0, 4.0, 4.0), np.diag([-1.0, 1.0, 1.0]), (0, 0, 0), (16, 16, 16))
    volume = blob_volume(ijk_to_ras, (16, 16, 16), [(20.0, 0.0, 20.0)])
    camera = orbit_camera(volume.center_ras(), volume.bounding_radius(), azimuth, 0.0)
    u, v = centroid(pt.render_pathtraced(volume, preset(), camera, 32, spp=4, max_depth=2).alpha)
    assert (u < 14) if right_on_screen == "left" else (u > 18)
    assert v < 14  # superior is up


def test_pixel_centroid_helper():
    # Guards the tests' own helper: a single pixel (u=5, v=2) has its centre at (5.5, 2.5).
    weights = np.zeros((4, 8))
    weights[2, 5] = 1.0
    np.testing.assert_allclose(centroid(weights), [5.5, 2.5])


def test_same_seed_same_image_other_seed_other_noise(mitsuba):
    import drjit as dr

    volume = blob_volume(OBLIQUE, SHAPE, [BLOB, CENTRE])
    camera = orbit_camera(volume.center_ras(), volume.bounding_radius(), 30.0, 20.0)
    threads = dr.thread_count()
    first, second, other = (pt.render_pathtraced(volume, preset(), camera, 32, spp=4, seed=seed,
                                                 threads=2)
                            for seed in (7, 7, 8))
    assert dr.thread_count() == threads, "the thread count must be restored"
    assert np.array_equal(first.rgb, second.rgb) and np.array_equal(first.alpha, second.alpha)
    assert not np.array_equal(first.rgb, other.rgb)
    assert first.alpha.max() > 0.5 and first.rgb.max() > 0.2


def test_noise_falls_as_samples_rise(mitsuba):
    # PSNR against an independent 256-spp reference (another seed) must rise with the samples:
    # 4 -> 16 -> 64 spp quarters the variance each time, +6 dB minus the reference's own noise.
    volume = blob_volume(OBLIQUE, SHAPE, [BLOB, CENTRE], sigma_mm=12.0)
    camera = orbit_camera(volume.center_ras(), volume.bounding_radius(), 30.0, 20.0)
    look = preset(0.05, rgb=(0.9, 0.7, 0.5))

    def render(spp: int, seed: int) -> np.ndarray:
        return pt.render_pathtraced(volume, look, camera, 48, spp=spp, seed=seed).rgb

    reference = render(256, seed=1)
    scores = [psnr(render(spp, seed=0), reference) for spp in (4, 16, 64)]
    assert scores[0] + 3 < scores[1] < scores[2] - 2, scores


def test_transparent_preset_shows_the_background(mitsuba):
    volume = blob_volume(OBLIQUE, SHAPE, [BLOB])
    camera = orbit_camera(volume.center_ras(), volume.bounding_radius(), 0.0, 0.0)
    image = pt.render_pathtraced(volume, preset(0.0), camera, 16, spp=2,
                                 background=(0.2, 0.4, 0.6))
    assert np.all(image.alpha == 0)
    np.testing.assert_allclose(image.rgb, np.broadcast_to([0.2, 0.4, 0.6], (16, 16, 3)), atol=1e-6)


def test_a_camera_inside_the_volume_sees_the_medium_around_it(mitsuba):
    # A homogeneous 100 mm cube with sigma_t = 0.02 / mm seen from its centre: the rays near
    # the optical axis cross 50 mm of it, alpha = 1 - exp(-1) = 0.632; 16 pixels x 64 spp give
    # a standard deviation of 0.015, so 0.05 is over 3 sigma.
    volume = Volume(torch.full((10, 10, 10), 1000.0), grid((10.0,) * 3, np.eye(3), (0, 0, 0),
                                                             (10, 10, 10)))
    camera = Camera((0.0, 0.0, 0.0), (0.0, 100.0, 0.0), (0.0, 0.0, 1.0), 30.0)
    look = preset(1.0 - np.exp(-0.02))
    image = pt.render_pathtraced(volume, look, camera, 32, spp=64, max_depth=2)
    assert image.alpha[14:18, 14:18].mean() == pytest.approx(1 - np.exp(-1.0), abs=0.05)


def facing_slab(normal) -> Volume:
    """An optically thick slab (8 mm of sigma_t 6.9 / mm with preset(1.0), 120 mm wide) whose
    front face, through the origin, faces `normal`: the medium fills the grid's box, so the face
    is flat at any tilt."""
    normal = np.asarray(normal, dtype=np.float64) / np.linalg.norm(normal)
    side = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
    side /= np.linalg.norm(side)
    axes = np.stack([side, np.cross(normal, side), normal], axis=1)  # k along the normal
    shape = (4, 60, 60)
    return Volume(torch.full(shape, 1000.0), grid((2.0, 2.0, 2.0), axes, -4.0 * normal, shape))


@pytest.mark.parametrize("tilt", [(-0.6, 0.6), (1.2, -1.2)], ids=["to-the-key", "away-from-it"])
def test_single_scattering_off_a_slab_has_the_albedo_hue_and_the_closed_form(mitsuba, tilt):
    """One scattering event (max_depth=2) in an optically thick medium of albedo w with an
    isotropic phase has a closed form (Chandrasekhar's single-scattering law), mu and mu0 the
    cosines between the face's normal and the viewer and the light:
        directional light of irradiance E:  w E / (4 pi) mu0 / (mu0 + mu)  (0 where mu0 <= 0)
        environment of constant radiance Le:  w Le / 2 (1 - mu ln(1 + 1 / mu))
    The key comes from the viewer's upper left and front ((-1, 1, 1) in right, up, toward the
    viewer; module docstring). The slab is tilted (right, up) from facing the camera: to the
    upper left it is lit by both lights (mu0 0.97), to the lower right by the environment only
    (mu0 -0.41)."""
    side = 32
    camera = orbit_camera(np.zeros(3), 40.0, 0.0, 0.0)
    forward = np.subtract(camera.focal_point, camera.position)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, camera.view_up)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    normal = -forward + tilt[0] * right + tilt[1] * up
    normal /= np.linalg.norm(normal)
    srgb = np.array([0.9, 0.5, 0.2])
    image = pt.render_pathtraced(facing_slab(normal), preset(1.0, rgb=tuple(srgb)), camera, side,
                                 spp=256, max_depth=2)
    # Every path carries albedo x a colourless factor (white lights, grey extinction): each
    # pixel has exactly the hue of the linear albedo (sRGB decoded, IEC 61966-2-1; all > 0.04045).
    per_albedo = image.radiance / ((srgb + 0.055) / 1.055) ** 2.4
    np.testing.assert_allclose(per_albedo, per_albedo[..., :1].repeat(3, -1), rtol=1e-5)
    # The central 12 x 12 pixels see the face (the slab's edges project further out).
    centre = np.s_[side // 2 - 6: side // 2 + 6, side // 2 - 6: side // 2 + 6]
    assert (image.alpha[centre] == 1.0).all()
    v, u = np.mgrid[centre] + 0.5
    focal = (side / 2) / np.tan(np.radians(camera.view_angle) / 2)
    rays = forward + ((u - side / 2) / focal)[..., None] * right \
        - ((v - side / 2) / focal)[..., None] * up
    mu = -(rays / np.linalg.norm(rays, axis=-1, keepdims=True)) @ normal
    mu0 = normal @ (-right + up - forward) / np.sqrt(3.0)
    key = pt.KEY_IRRADIANCE / (4 * np.pi) * max(mu0, 0.0) / (mu0 + mu)
    environment = pt.ENVIRONMENT_RADIANCE / 2 * (1 - mu * np.log(1 + 1 / mu))
    expected = (key + environment).mean()
    measured = per_albedo[centre][..., 0].mean()
    # Measured over 10 seeds: -0.6 % (sd 1 %) lit, -2.5 % (sd 0.7 %) unlit; 6 % covers bias and
    # noise. A key from the upper right is 35 % off in the lit case, no environment 100 % unlit.
    assert measured == pytest.approx(expected, rel=0.06)


@pytest.fixture(scope="module")
def sample_bone():
    """The bundled CT, CT-Bone, anterior view at 64 px: (ct, preset, camera, image)."""
    if mitsuba_problem() is not None:
        pytest.skip(f"Mitsuba cannot render here: {mitsuba_problem()}")
    ct, bone = read_ct(SAMPLE_CT), load_preset("CT-Bone")
    camera = orbit_camera(ct.center_ras(), ct.bounding_radius(), 0.0, 0.0)
    return ct, bone, camera, pt.render_pathtraced(ct, bone, camera, 64, spp=16, max_depth=2)


def splatted_alpha(sigma_t: torch.Tensor, ijk_to_ras: np.ndarray, camera: Camera,
                   side: int) -> np.ndarray:
    """[side, side] 1 - exp(-tau): each voxel's optical depth sigma_t x volume, spread over the
    footprint of the pixel its centre projects to ((depth / focal)^2 mm^2 at its depth)."""
    k, j, i = torch.nonzero(sigma_t > 0, as_tuple=True)
    ras = torch.stack([i, j, k], -1).double().numpy() @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    eye = ras @ camera.world_to_camera()[:3, :3].T + camera.world_to_camera()[:3, 3]
    intrinsics = camera.intrinsics(side, side)
    uvw = eye @ intrinsics.T
    uv = np.floor(uvw[:, :2] / uvw[:, 2:]).astype(int)
    depth = sigma_t[k, j, i].double().numpy() * abs(np.linalg.det(ijk_to_ras[:3, :3]))
    depth /= (eye[:, 2] / intrinsics[0, 0]) ** 2
    inside = np.all((uv >= 0) & (uv < side), axis=1)
    tau = np.zeros((side, side))
    np.add.at(tau, (uv[inside, 1], uv[inside, 0]), depth[inside])
    return 1.0 - np.exp(-tau)


def test_sample_alpha_matches_the_splatted_optical_depth_of_the_voxels(sample_bone):
    # An independent estimate of coverage: the voxels' optical depth (per-mm rule) splatted
    # through Camera's pinhole. Measured: IoU of alpha > 0.5 0.96, mean |alpha difference| 0.012
    # (edge pixels: splatting averages tau over a pixel, the path tracer averages exp(-tau)).
    ct, bone, camera, image = sample_bone
    sigma_t, _, ijk_to_ras = pt.medium_grids(ct, bone)
    splatted = splatted_alpha(sigma_t, ijk_to_ras, camera, 64)
    shown, traced = splatted > 0.5, image.alpha > 0.5
    assert (shown & traced).sum() / (shown | traced).sum() > 0.93
    assert np.abs(splatted - image.alpha).mean() < 0.03


def test_sample_silhouette_matches_the_dvr_reference(sample_bone):
    # Both follow the per-mm opacity rule, so alpha > 0.5 should agree up to the edge pixels
    # (dvr interpolates HU, the path tracer interpolates the classified density): IoU 0.97.
    dvr = pytest.importorskip("RenderFMLib.groundtruth.dvr")
    ct, bone, camera, image = sample_bone
    reference = dvr.render_dvr(ct, bone, camera, 64).alpha.numpy() > 0.5
    traced = image.alpha > 0.5
    assert (reference & traced).sum() / (reference | traced).sum() > 0.93


@pytest.mark.parametrize("name, version", [
    ("libLLVM-19.so", 19), ("libLLVM.so.19.1", 19), ("libLLVM-15.so.1", 15),
    ("libLLVM-14.0.6.so.1", 14), ("libLLVMCore.a", None), ("libLLVM.so", None)])
def test_llvm_version_from_library_names(name, version):
    assert mitsuba_loader._llvm_version(f"/nonexistent/{name}") == version


def test_libllvm_19_is_chosen_unless_the_user_chose(monkeypatch):
    found = {14: "/lib/libLLVM-14.so", 15: "/lib/libLLVM-15.so", 19: "/lib/libLLVM.so.19.1",
             20: "/lib/libLLVM.so.20.1"}
    monkeypatch.setattr(mitsuba_loader, "libllvm_candidates", lambda: found)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DRJIT_LIBLLVM_PATH", raising=False)
    mitsuba_loader._choose_libllvm()
    assert os.environ["DRJIT_LIBLLVM_PATH"] == "/lib/libLLVM.so.19.1"
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", "/mine/libLLVM.so")
    mitsuba_loader._choose_libllvm()
    assert os.environ["DRJIT_LIBLLVM_PATH"] == "/mine/libLLVM.so"
    monkeypatch.delenv("DRJIT_LIBLLVM_PATH")
    monkeypatch.setattr(mitsuba_loader, "libllvm_candidates", lambda: {15: "/lib/libLLVM-15.so"})
    mitsuba_loader._choose_libllvm()
    assert "DRJIT_LIBLLVM_PATH" not in os.environ
    assert "apt-get install libllvm19" in mitsuba_loader._llvm_advice({15: "/lib/libLLVM-15.so"})


OLD_LLVM = Path("/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1")


@pytest.mark.skipif(not OLD_LLVM.exists() or importlib.util.find_spec("mitsuba") is None,
                    reason="needs Debian's libLLVM 15 (which aborts Dr.Jit) and Mitsuba")
def test_an_old_libllvm_gives_an_error_instead_of_a_crash():
    script = textwrap.dedent("""
        import numpy as np, torch
        from RenderFMLib.camera import Camera
        from RenderFMLib.errors import RenderFMError
        from RenderFMLib.groundtruth.pathtraced import render_pathtraced
        from RenderFMLib.transfer import load_preset
        from RenderFMLib.volume import Volume
        volume = Volume(torch.zeros(4, 4, 4), np.eye(4))
        try:
            render_pathtraced(volume, load_preset("CT-Bone"), Camera((0, -50, 0), (0, 0, 0),
                              (0, 0, 1)), 8, spp=1, variant="llvm_ad_rgb")
        except RenderFMError as error:
            print("ERROR", error)
    """)
    env = {**os.environ, "DRJIT_LIBLLVM_PATH": str(OLD_LLVM)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERROR" in done.stdout and "apt-get install libllvm19" in done.stdout


@pytest.mark.parametrize("setting", [
    {"spp": 0}, {"seed": -1}, {"max_depth": 0}, {"density_scale": float("nan")},
    {"threads": 0}, {"background": (1.0, 0.0)}, {"variant": "cuda_ad_mono_polarized"}])
def test_bad_settings_raise_one_clear_error(setting):
    # Checked before Mitsuba is loaded, so these run (and fail clearly) without it too.
    volume = Volume(torch.zeros(4, 4, 4), np.eye(4))
    camera = Camera((0.0, -50.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    with pytest.raises(RenderFMError):
        pt.render_pathtraced(volume, preset(), camera, 8, **setting)


def test_many_samples_run_in_passes_that_report_progress(mitsuba, monkeypatch):
    monkeypatch.setattr(pt, "LANES_PER_PASS", 3 * 16 * 16)
    volume = blob_volume(OBLIQUE, SHAPE, [CENTRE])
    camera = orbit_camera(volume.center_ras(), volume.bounding_radius(), 0.0, 0.0)
    calls = []
    image = pt.render_pathtraced(volume, preset(), camera, 16, spp=7, max_depth=2,
                                 progress=lambda *call: calls.append(call))
    # 3 samples per pixel fit a pass: passes of 3, 3 and 1 samples.
    assert [fraction for fraction, _ in calls] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert calls[-1][1] == "path tracing: 7/7 samples per pixel"
    assert 0.2 < float(image.alpha.max()) <= 1.0
