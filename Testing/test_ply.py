"""Tests of RenderFMLib.ply: the exported 3DGS .ply is parsed here with plain numpy and read the way
a standard 3DGS viewer reads it (covariance from scale + quaternion, sigmoid opacity, the 3DGS SH
colour rule), then compared with the library's own slicing and projection for the same camera."""

from pathlib import Path

import numpy as np
import pytest
import torch
from data_paths import SHARED_DATA as DATA  # noqa: E402

from RenderFMLib import api
from RenderFMLib.camera import camera_tensors
from RenderFMLib.gaussians import SixDGaussians
from RenderFMLib.ply import _quaternions, export_ply
from RenderFMLib.render.reference import slice_gaussians, slice_project
from RenderFMLib.sh import sh_basis

CT = DATA / "totalseg" / "example_ct_sm.nii.gz"
SEG = DATA / "totalseg" / "example_seg.nii.gz"

STANDARD_3DGS_DEGREE_2 = (
    ["x", "y", "z", "nx", "ny", "nz"]
    + [f"f_dc_{i}" for i in range(3)]
    + [f"f_rest_{i}" for i in range(24)]
    + ["opacity"]
    + [f"scale_{i}" for i in range(3)]
    + [f"rot_{i}" for i in range(4)]
)


@pytest.fixture(scope="module")
def prepared() -> SixDGaussians:
    if not (CT.is_file() and SEG.is_file()):
        pytest.skip(f"shared test data not found at {DATA / 'totalseg'}")
    return api.prepare(CT, SEG, "CT-Bone")


def perturbed(gaussians: SixDGaussians, seed: int = 0) -> SixDGaussians:
    """Random residuals on everything that shapes the sliced Gaussian, as a trained network would
    give. AGP alone is isotropic and uncorrelated (every quaternion is the identity and K = 0, so
    mu_c = mu_p), which would leave rotations and view-dependent means untested."""
    gen = torch.Generator().manual_seed(seed)
    params = {name: value.clone() for name, value in gaussians.params().items()}
    params["log_scales"] += 0.4 * torch.randn(params["log_scales"].shape, generator=gen)
    params["corr_logits"] += 1.5 * torch.randn(params["corr_logits"].shape, generator=gen)
    params["dir_means"] += 0.5 * torch.randn(params["dir_means"].shape, generator=gen)
    params["opacity_logits"] += torch.randn(params["opacity_logits"].shape, generator=gen)
    params["sh"] += 0.3 * torch.randn(params["sh"].shape, generator=gen)
    params["specular_sh"] += 0.1 * torch.randn(params["specular_sh"].shape, generator=gen)
    return SixDGaussians(params, gaussians.labels.clone(), gaussians.ijk_to_ras,
                         gaussians.volume_shape, gaussians.preset)


@pytest.fixture(scope="module", params=["agp", "perturbed"])
def gaussians(request, prepared) -> SixDGaussians:
    return prepared if request.param == "agp" else perturbed(prepared)


@pytest.fixture(scope="module")
def camera(prepared):
    return api.default_camera(prepared, azimuth=30.0, elevation=20.0)


@pytest.fixture(scope="module")
def exported(gaussians, camera, tmp_path_factory):
    path = tmp_path_factory.mktemp("ply") / "splats.ply"
    count = export_ply(gaussians, camera, path)
    return count, read_ply(path)


def read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    """A minimal binary_little_endian PLY reader: header lines up to end_header, then records."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    assert lines[0] == "ply"
    assert lines[1] == "format binary_little_endian 1.0"
    assert lines[-1] == "end_header"
    elements = [line.split() for line in lines if line.startswith("element")]
    assert len(elements) == 1 and elements[0][1] == "vertex"
    count = int(elements[0][2])
    properties = [line.split() for line in lines if line.startswith("property")]
    assert all(kind == "float" for _, kind, _ in properties)
    names = [name for _, _, name in properties]
    dtype = np.dtype([(name, "<f4") for name in names])
    assert len(raw) - end == count * dtype.itemsize  # no truncation, no trailing bytes
    return names, np.frombuffer(raw[end:], dtype=dtype)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """[N, 4] (w, x, y, z), normalized first as 3DGS does -> [N, 3, 3] rotation matrices."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def sh_basis_3dgs(v: np.ndarray) -> np.ndarray:
    """Degree-2 real SH as 3DGS's eval_sh evaluates them (constants of DESIGN.md section 4)."""
    c0, c1 = 0.28209479177387814, 0.4886025119029199
    c2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
          0.5462742152960396)
    x, y, z = v.T
    return np.stack([np.full_like(x, c0), -c1 * y, c1 * z, -c1 * x, c2[0] * x * y, c2[1] * y * z,
                     c2[2] * (2 * z * z - x * x - y * y), c2[3] * x * z, c2[4] * (x * x - y * y)],
                    -1)


def column(table: np.ndarray, names) -> np.ndarray:
    return np.stack([table[name].astype(np.float64) for name in names], -1)


# ---------------------------------------------------------------- layout ---------------------

def test_vertex_count_and_standard_properties(gaussians, exported):
    count, (names, table) = exported
    assert count == len(table) == len(gaussians) > 1000
    assert names == STANDARD_3DGS_DEGREE_2
    np.testing.assert_array_equal(column(table, ["nx", "ny", "nz"]), 0.0)
    assert np.isfinite(column(table, names)).all()


# ---------------------------------------------------------------- geometry -------------------

def test_covariance_from_scale_and_rotation_is_the_sliced_covariance(gaussians, exported):
    _, (_, table) = exported
    rotation = quaternion_to_matrix(column(table, [f"rot_{i}" for i in range(4)]))
    variances = np.exp(2.0 * column(table, [f"scale_{i}" for i in range(3)]))
    rebuilt = rotation @ (variances[:, :, None] * rotation.transpose(0, 2, 1))
    s_c = gaussians.derived()[0].double().numpy()
    # float32 storage of scale (|scale| <~ 3: exp(2 scale) off by ~4e-7 relative) and of the
    # quaternion (~1e-7): 1e-4 relative to each matrix's size is far above that rounding and far
    # below any wrong axis or sign (an error of order 1).
    error = np.linalg.norm(rebuilt - s_c, axis=(1, 2)) / np.linalg.norm(s_c, axis=(1, 2))
    assert error.max() < 1e-4


def test_positions_and_opacities_are_the_slice_at_the_camera(gaussians, camera, exported):
    _, (_, table) = exported
    _, gains, s_dd_inv = gaussians.derived()
    centre = torch.tensor(camera.position, dtype=gaussians.means.dtype)
    mu_c, alpha_c = slice_gaussians(gaussians.means, gaussians.dir_means, gains, s_dd_inv,
                                    gaussians.opacity_logits, centre)
    # float32 positions of up to ~300 mm: ulp ~3e-5 mm
    np.testing.assert_allclose(column(table, "xyz"), mu_c.double().numpy(), rtol=0, atol=1e-4)
    # a viewer reads opacity through a sigmoid; the export clips alpha to [1e-7, 1 - 1e-7] before
    # the logit. float32 logits (|logit| <= 16.2, ulp <= 2e-6) move sigmoid by <= 5e-7.
    opacity = 1.0 / (1.0 + np.exp(-table["opacity"].astype(np.float64)))
    expected = np.clip(alpha_c.double().numpy(), 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(opacity, expected, rtol=0, atol=1e-6)
    assert expected.std() > 1e-3  # opacities vary, so the comparison is not trivial


# ---------------------------------------------------------------- colour ---------------------

def test_3dgs_colour_rule_at_the_axis_gives_the_rendered_colours(gaussians, camera, exported):
    _, (_, table) = exported
    width, height = 96, 80
    world_to_camera, intrinsics, centre = camera_tensors(camera, width, height, gaussians.device,
                                                         gaussians.means.dtype)
    s_c, gains, s_dd_inv = gaussians.derived()
    projected = slice_project(gaussians.means, gaussians.dir_means, s_c, gains, s_dd_inv,
                              gaussians.opacity_logits, gaussians.rgb, gaussians.sh,
                              gaussians.specular_sh, world_to_camera, intrinsics, centre, width,
                              height)
    expected = projected["colors"].double().numpy()
    # rgb max(0, S) + max(0, W) is one RGB expansion where S and W are not negative (the
    # renderer clamps each; the perturbed Gaussians' W is negative from some directions)
    along = sh_basis(world_to_camera[2, :3][None].double() / world_to_camera[2, :3].norm())
    lit = (((gaussians.sh.double() @ along.T) >= 0)
           & ((gaussians.specular_sh.double() @ along.T) >= 0))[:, 0].numpy()
    assert lit.mean() > 0.3

    means = column(table, "xyz")
    view = means - np.array(camera.position)
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    # the library's basis is the 3DGS one (the export relies on it)
    np.testing.assert_allclose(sh_basis(torch.from_numpy(view)).numpy(), sh_basis_3dgs(view),
                               atol=1e-12)
    # RenderFM shades every Gaussian along the camera's axis (Slicer's headlight); a 3DGS viewer
    # evaluates the same coefficients along each Gaussian's own direction instead
    axis = world_to_camera[2, :3].double().numpy()
    basis = np.repeat(sh_basis_3dgs(axis[None] / np.linalg.norm(axis)), len(means), axis=0)
    f_dc = column(table, [f"f_dc_{i}" for i in range(3)])
    f_rest = column(table, [f"f_rest_{i}" for i in range(24)]).reshape(-1, 3, 8)  # channel-major
    colour = basis[:, None, 0] * f_dc + np.einsum("nck,nk->nc", f_rest, basis[:, 1:]) + 0.5
    colour = np.maximum(colour, 0.0)
    assert expected.max() > 0.2 and (expected > 0).mean() > 0.5  # real, mostly lit colours
    # float32 coefficients of size ~2 (f_dc = rgb sh_0 - 1.77): rounding ~2e-7 per term, a few
    # terms: 2e-5 is ample, and a wrong channel order or sign is off by ~0.1
    np.testing.assert_allclose(colour[lit], expected[lit], rtol=0, atol=2e-5)


def test_colours_depend_on_the_view_as_the_renderer_says(prepared, tmp_path):
    """Exported at two cameras, the degree-2 SH rule stays exact at each camera; and the
    coefficients themselves do not depend on the camera (only mu_c and alpha_c do)."""
    cams = [api.default_camera(prepared, azimuth=a, elevation=e) for a, e in ((0, 0), (200, -30))]
    tables = []
    for index, camera in enumerate(cams):
        path = tmp_path / f"view{index}.ply"
        export_ply(prepared, camera, path)
        tables.append(read_ply(path)[1])
    names = [f"f_dc_{i}" for i in range(3)] + [f"f_rest_{i}" for i in range(24)]
    np.testing.assert_array_equal(column(tables[0], names), column(tables[1], names))
    rest = column(tables[0], [f"f_rest_{i}" for i in range(24)])
    assert np.abs(rest).max() > 1e-3  # there is view dependence to export


# ---------------------------------------------------------------- quaternions ----------------

def random_rotations(count: int, seed: int) -> np.ndarray:
    """Haar-random proper rotations: QR of Gaussian matrices with the sign fixed, det +1."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(count, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 2] *= -1.0
    return q


def axis_angle(axis, angle: float) -> np.ndarray:
    """Rodrigues' formula, independent of any quaternion code."""
    n = np.asarray(axis, dtype=np.float64)
    n = n / np.linalg.norm(n)
    k = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_quaternion_round_trip_on_random_rotations():
    rotations = np.concatenate([
        random_rotations(500, seed=7),
        np.eye(3)[None],
        np.stack([axis_angle(a, t) for a in ((1, 2, 3), (-1, 0.5, 0.2), (0, 0, 1))
                  for t in (1e-6, 0.3, 2.0, 3.0, np.pi - 1e-3)]),
        np.stack([axis_angle(a, np.pi) for a in np.eye(3)]),  # 180 degrees about x, y, z
    ])
    assert np.allclose(np.linalg.det(rotations), 1.0)
    quats = _quaternions(rotations)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-12)
    assert (quats[:, 0] >= 0).all()  # w >= 0: the canonical one of q and -q
    # float64 throughout: 1e-9 is many orders above rounding and below any real error
    np.testing.assert_allclose(quaternion_to_matrix(quats), rotations, atol=1e-9)


@pytest.mark.parametrize("axis", [(1, -1, 0), (0, 1, -1), (1, -2, 3), (-1, 1, 1)])
def test_quaternion_round_trip_half_turns_about_oblique_axes(axis):
    """A half turn about unit n is R = 2 n n^T - I: symmetric, so R - R^T is exactly zero and
    cannot give the signs of (x, y, z) = n; the signs must come from the off-diagonal sums.
    Such frames do come out of export_ply's eigh, e.g. for S_c = [[2, 1, 0], [1, 2, 0],
    [0, 0, 3]]; taking signs from R - R^T wrote that covariance with its xy term flipped."""
    n = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    rotation = 2.0 * np.outer(n, n) - np.eye(3)
    np.testing.assert_allclose(rotation, axis_angle(axis, np.pi), atol=1e-12)  # a proper rotation
    np.testing.assert_allclose(quaternion_to_matrix(_quaternions(rotation[None]))[0], rotation,
                               atol=1e-9)
