"""Real spherical harmonics of degree 2 (9 functions), in the 3DGS basis and sign convention.

Used for the scalar, view-dependent shading term S(v) of every Gaussian (DESIGN.md section 4):
colour(v) = rgb * max(0, sum_k sh[k] * Y_k(v)), v = the camera's viewing axis (RAS; the same for
every Gaussian of a frame, as Slicer's headlight: render/reference/slice_project.py). Because the
basis is the one 3DGS uses, rgb * sh is an RGB degree-2 expansion that standard splat viewers
evaluate (along each Gaussian's own direction from the camera; see ply.py).
"""

import torch

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)
NUM_SH = 9


def sh_basis(directions: torch.Tensor) -> torch.Tensor:
    """The 9 basis functions at unit `directions` [..., 3] -> [..., 9]."""
    x, y, z = directions.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    return torch.stack(
        [
            torch.full_like(x, SH_C0),
            -SH_C1 * y,
            SH_C1 * z,
            -SH_C1 * x,
            SH_C2[0] * x * y,
            SH_C2[1] * y * z,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * x * z,
            SH_C2[4] * (xx - yy),
        ],
        dim=-1,
    )


def fibonacci_sphere(count: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`count` nearly uniform unit directions [count, 3] (a Fibonacci lattice)."""
    index = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * index / count
    ring = torch.sqrt(torch.clamp(1.0 - z * z, min=0.0))
    phi = index * torch.pi * (3.0 - 5.0**0.5)
    return torch.stack([ring * torch.cos(phi), ring * torch.sin(phi), z], dim=-1).to(dtype)
