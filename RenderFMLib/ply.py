"""Export of view-sliced Gaussians to the standard 3DGS .ply layout, for other splat viewers.

A 6D Gaussian sliced at one camera centre is an ordinary 3D Gaussian (mean mu_c, covariance S_c,
opacity alpha_c). Its colour rgb * max(0, S(v)) + max(0, W(v)) (W: the white specular term) is,
wherever S and W are not negative, exactly the RGB degree-2 SH expansion with coefficients
rgb * sh + specular_sh (same basis, sh.py), which 3DGS viewers evaluate as
max(0, SH_C0 f_dc + ... + 0.5): so f_dc = (rgb sh + specular_sh)_0 - 0.5 / SH_C0 and f_rest =
(rgb sh + specular_sh)_1..8, stored channel-major (f_rest_0..7 red, 8..15 green, 16..23 blue).
Positions are RAS millimetres. Those viewers take v from the camera to each Gaussian, RenderFM
the camera's axis (Slicer's headlight): the same at the image centre, up to half the view angle
apart at its edges.
With a crop box, the Gaussians are clipped at its faces for that camera as render() clips them.
"""

from pathlib import Path

import numpy as np
import torch

from .camera import Camera
from .crop import CropBox, clipped_splats
from .files import write_atomic
from .gaussians import SixDGaussians
from .render.reference import slice_gaussians
from .sh import SH_C0


def sliced_gaussians(gaussians: SixDGaussians, camera: Camera, crop: CropBox | None = None
                     ) -> dict[str, torch.Tensor]:
    """The 3D Gaussians seen from the camera centre: means [N, 3] RAS mm, covariances [N, 3, 3]
    mm^2, opacities [N], f_dc [N, 3], f_rest [N, 24] (3DGS conventions, see module doc); only
    what lies inside crop (RAS mm; None: all), clipped at its faces."""
    centre = torch.as_tensor(camera.position, dtype=gaussians.means.dtype, device=gaussians.device)
    splats: tuple[torch.Tensor, ...]
    if crop is None:
        s_c, gains, s_dd_inv = gaussians.derived()
        splats = (gaussians.means, gaussians.dir_means, s_c, gains, s_dd_inv,
                  gaussians.opacity_logits, gaussians.rgb, gaussians.sh, gaussians.specular_sh)
    else:
        splats = clipped_splats(gaussians, crop, centre)
    means, dir_means, s_c, gains, s_dd_inv, logits, rgb, sh, specular_sh = splats
    means, opacities = slice_gaussians(means, dir_means, gains, s_dd_inv, logits, centre)
    coeffs = rgb[:, :, None] * sh[:, None, :] + specular_sh[:, None, :]  # [N, 3, 9]
    return {
        "means": means,
        "covariances": s_c,
        "opacities": opacities,
        "f_dc": coeffs[:, :, 0] - 0.5 / SH_C0,
        "f_rest": coeffs[:, :, 1:].reshape(len(means), 24),
    }


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """Unit quaternions [N, 4] (w, x, y, z), w >= 0, of proper rotation matrices [N, 3, 3].

    Each row starts from the largest of 4w^2, 4x^2, 4y^2, 4z^2 (read off the diagonal) and takes
    the other three from sums and differences of the off-diagonal terms, so half turns (where
    R - R^T vanishes) come out right.
    """
    m = rotations
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    squares = np.stack([1 + trace, 1 + 2 * m[:, 0, 0] - trace, 1 + 2 * m[:, 1, 1] - trace,
                        1 + 2 * m[:, 2, 2] - trace], axis=-1)  # 4 w^2, 4 x^2, 4 y^2, 4 z^2
    big = squares.argmax(axis=-1)
    root = np.sqrt(np.clip(squares[np.arange(len(m)), big], 1e-300, None))  # 2 |q_big|
    sym_xy, sym_xz = m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]
    sym_yz = m[:, 1, 2] + m[:, 2, 1]
    skew_x, skew_y = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0]
    skew_z = m[:, 1, 0] - m[:, 0, 1]
    # 4 q_big q_other for every choice of big, in (w, x, y, z) order.
    products = np.stack([
        np.stack([squares[:, 0], skew_x, skew_y, skew_z], axis=-1),
        np.stack([skew_x, squares[:, 1], sym_xy, sym_xz], axis=-1),
        np.stack([skew_y, sym_xy, squares[:, 2], sym_yz], axis=-1),
        np.stack([skew_z, sym_xz, sym_yz, squares[:, 3]], axis=-1),
    ], axis=1)[np.arange(len(m)), big]
    quats = products / (2.0 * root[:, None])
    quats *= np.where(quats[:, :1] < 0, -1.0, 1.0)
    return quats / np.linalg.norm(quats, axis=-1, keepdims=True)


def export_ply(gaussians: SixDGaussians, camera: Camera, path: str | Path,
               crop: CropBox | None = None) -> int:
    """Write the Gaussians sliced at `camera` as a binary 3DGS .ply, only those inside crop (RAS
    mm, clipped at its faces; None: all); returns how many were written.

    Fields: x y z, nx ny nz (0), f_dc_0..2, f_rest_0..23, opacity (logit), scale_0..2 (log of
    the standard deviations along the principal axes), rot_0..3 (w, x, y, z).
    """
    with torch.no_grad():
        sliced = {k: v.double().cpu().numpy()
                  for k, v in sliced_gaussians(gaussians, camera, crop).items()}
    eigenvalues, eigenvectors = np.linalg.eigh(sliced["covariances"])
    eigenvectors[np.linalg.det(eigenvectors) < 0, :, 2] *= -1.0
    opacity = np.clip(sliced["opacities"], 1e-7, 1 - 1e-7)
    columns = {
        **{axis: sliced["means"][:, i] for i, axis in enumerate("xyz")},
        **{f"n{axis}": np.zeros(len(opacity)) for axis in "xyz"},
        **{f"f_dc_{i}": sliced["f_dc"][:, i] for i in range(3)},
        **{f"f_rest_{i}": sliced["f_rest"][:, i] for i in range(24)},
        "opacity": np.log(opacity / (1.0 - opacity)),
        **{f"scale_{i}": 0.5 * np.log(np.clip(eigenvalues[:, i], 1e-12, None)) for i in range(3)},
        **{f"rot_{i}": q for i, q in enumerate(_quaternions(eigenvectors).T)},
    }
    return _write_ply(path, columns)


def _write_ply(path: str | Path, columns: dict[str, np.ndarray]) -> int:
    """Write the columns (name: [N] values) as a binary little-endian float32 .ply, whole or not
    at all (files.write_atomic); returns N."""
    table = np.empty(len(next(iter(columns.values()))), dtype=[(name, "<f4") for name in columns])
    for name, values in columns.items():
        table[name] = values
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", f"element vertex {len(table)}"]
        + [f"property float {name}" for name in columns]
        + ["end_header"]
    ) + "\n"

    def write(partial: Path) -> None:
        with open(partial, "wb") as handle:
            handle.write(header.encode("ascii"))
            handle.write(table.tobytes())

    write_atomic(path, write)
    return len(table)
