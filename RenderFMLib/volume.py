"""Reading CTs and segmentations, their geometry (IJK -> RAS) and resampling.

World coordinates are patient RAS millimetres (Slicer's convention). SimpleITK works in LPS; the
conversion happens only through LPS_TO_RAS, in from_sitk and to_sitk. Voxel centres sit at integer
indices (i, j, k), i being the column (fastest) index, so a grid of n voxels spans -0.5 .. n - 0.5.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from .errors import RenderFMWarning, VolumeError
from .files import is_special
from .nifti_check import check_nifti

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_TO_RAS.flags.writeable = False
"""Homogeneous LPS <-> RAS flip; it is its own inverse, so it converts both ways."""

_ORIGIN_TOL_MM = 1e-3
_DIRECTION_TOL = 1e-4
_HU_SAMPLE = 2_000_000  # voxels looked at when judging whether values are HU
_LOWEST_AIR_HU = -1500.0  # air is about -1000 HU; its darkest percent is never below this
_CHECK_VOXELS = 4_000_000  # voxels looked at at once when counting non-finite values


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D scalar image on a voxel grid in patient RAS millimetres.

    array: [K, J, I] (slice, row, column), as SimpleITK's GetArrayFromImage orders it; float32 HU
    for a CT, int64 labels for a segmentation.
    ijk_to_ras: [4, 4] float64, maps homogeneous voxel indices (i, j, k, 1) to RAS mm.
    """

    array: torch.Tensor
    ijk_to_ras: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.array, torch.Tensor) or self.array.dim() != 3:
            shape = tuple(getattr(self.array, "shape", ()))
            raise VolumeError(f"a volume needs a 3D torch tensor, got one of shape {shape}")
        matrix = np.array(self.ijk_to_ras, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise VolumeError(f"a volume's ijk_to_ras must be a finite 4x4 matrix, got {matrix}")
        if not np.allclose(matrix[3], [0, 0, 0, 1]) or np.linalg.matrix_rank(matrix[:3, :3]) < 3:
            raise VolumeError(f"a volume's ijk_to_ras must be an invertible affine map: {matrix}")
        matrix.flags.writeable = False
        object.__setattr__(self, "ijk_to_ras", matrix)

    def slab(self, first: int, end: int) -> Volume:
        """Voxel slices first..end - 1 (k) as a Volume of their own (a view, no copy)."""
        return self.box(((first, end), (0, self.shape[1]), (0, self.shape[2])))

    def box(self, box: tuple[tuple[int, int], ...]) -> Volume:
        """The voxels ((k0, k1), (j0, j1), (i0, i1)) (ends excluded) as a Volume of their own,
        in the same RAS place (a view, no copy)."""
        (k0, k1), (j0, j1), (i0, i1) = box
        shift = np.eye(4)
        shift[:3, 3] = (i0, j0, k0)
        return Volume(self.array[k0:k1, j0:j1, i0:i1], self.ijk_to_ras @ shift)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel counts (K, J, I), the array's order."""
        k, j, i = self.array.shape
        return k, j, i

    @property
    def spacing(self) -> np.ndarray:
        """[3] voxel size in mm along i, j, k."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    def voxel_to_ras(self, ijk: np.ndarray) -> np.ndarray:
        """[..., 3] continuous voxel indices (i, j, k) -> [..., 3] RAS mm."""
        return _to_ras(self.ijk_to_ras, np.asarray(ijk, dtype=np.float64))

    def corners_ras(self) -> np.ndarray:
        """[8, 3] RAS mm of the grid's outer corners (index -0.5 and n - 0.5 on each axis)."""
        return grid_corners_ras(self.ijk_to_ras, self.shape)

    def center_ras(self) -> np.ndarray:
        """[3] RAS mm of the grid's centre."""
        return grid_center_ras(self.ijk_to_ras, self.shape)

    def bounding_radius(self) -> float:
        """Radius in mm of the sphere around center_ras that encloses all corners."""
        return grid_bounding_radius(self.ijk_to_ras, self.shape)


def _to_ras(ijk_to_ras: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return ijk @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]


def grid_corners_ras(ijk_to_ras: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """[8, 3] RAS mm of the outer corners of a (K, J, I) voxel grid."""
    corners = itertools.product(*[(-0.5, n - 0.5) for n in shape[::-1]])
    return _to_ras(ijk_to_ras, np.array(list(corners), dtype=np.float64))


def grid_center_ras(ijk_to_ras: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """[3] RAS mm of the centre of a (K, J, I) voxel grid."""
    return _to_ras(ijk_to_ras, (np.array(shape[::-1], dtype=np.float64) - 1) / 2.0)


def grid_bounding_radius(ijk_to_ras: np.ndarray, shape: tuple[int, int, int]) -> float:
    """Radius in mm of the sphere around the grid's centre that encloses its corners."""
    corners = grid_corners_ras(ijk_to_ras, shape)
    return float(np.linalg.norm(corners - grid_center_ras(ijk_to_ras, shape), axis=1).max())


def from_sitk(image: sitk.Image, dtype: torch.dtype) -> Volume:
    """A Volume (values cast to dtype) from a 3D scalar SimpleITK image; LPS geometry -> RAS."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(
            f"a volume needs a 3D scalar image, got a {image.GetDimension()}D image with "
            f"{image.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    ijk_to_lps = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    ijk_to_lps[:3, :3] = direction * np.array(image.GetSpacing())
    ijk_to_lps[:3, 3] = image.GetOrigin()
    numpy_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    array = sitk.GetArrayViewFromImage(image).astype(numpy_dtype)
    return Volume(torch.from_numpy(array), LPS_TO_RAS @ ijk_to_lps)


def _lps_geometry(ijk_to_ras: np.ndarray) -> tuple[tuple, tuple, tuple]:
    """(origin LPS mm, spacing mm, row-major direction) of a RAS grid, as SimpleITK wants them."""
    ijk_to_lps = LPS_TO_RAS @ ijk_to_ras
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    direction = ijk_to_lps[:3, :3] / spacing
    return tuple(ijk_to_lps[:3, 3]), tuple(spacing), tuple(direction.ravel())


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image (LPS geometry) holding the volume's values; inverse of from_sitk."""
    image = sitk.GetImageFromArray(volume.array.detach().cpu().numpy(), isVector=False)
    origin, spacing, direction = _lps_geometry(volume.ijk_to_ras)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def _read_dicom_folder(folder: Path) -> sitk.Image:
    """The DICOM series in folder (the one with most files if several)."""
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise VolumeError(f"no DICOM series in {folder}")
    files = max((reader.GetGDCMSeriesFileNames(str(folder), s) for s in series), key=len)
    if len(series) > 1:
        warnings.warn(
            f"{folder} holds {len(series)} DICOM series; using the largest ({len(files)} files)",
            RenderFMWarning,
            stacklevel=4,
        )
    reader.SetFileNames(files)
    return reader.Execute()


def _read_image(path: Path) -> sitk.Image:
    """A 3D scalar SimpleITK image from a file or DICOM folder; VolumeError naming path if not."""
    if not path.exists():
        raise VolumeError(f"{path} does not exist")
    if is_special(path):  # a FIFO or device would block the reader for ever
        raise VolumeError(f"{path} is not a file or a folder (a pipe or a device); give an image "
                          "file or a DICOM folder")
    check_nifti(path)  # truncated or non-finite NIfTI data, which SimpleITK would read as 0
    try:
        image = _read_dicom_folder(path) if path.is_dir() else sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].replace("sitk::ERROR: ", "")
        raise VolumeError(f"{path} is not an image SimpleITK can read ({reason})") from None
    _check_layout(image, path)
    return image


def _check_layout(image: sitk.Image, path: Path) -> None:
    """Raise VolumeError unless image is a non-empty 3D scalar volume with several slices."""
    size = "x".join(str(n) for n in image.GetSize())
    dimension = image.GetDimension()
    if dimension == 2:
        raise VolumeError(f"{path} is a 2D image ({size}); RenderFM needs a 3D volume")
    if dimension > 3:
        raise VolumeError(f"{path} is a {dimension}D image ({size}); RenderFM needs one 3D volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(
            f"{path} has {image.GetNumberOfComponentsPerPixel()} components per voxel (an RGB or "
            "vector image); RenderFM needs a scalar volume"
        )
    if 0 in image.GetSize():
        raise VolumeError(f"{path} is empty ({size} voxels)")
    if 1 in image.GetSize():
        raise VolumeError(
            f"{path} is a single slice ({size}); RenderFM needs a 3D volume "
            "(for a DICOM series, pass its folder)"
        )


def _check_finite(values: np.ndarray, path: Path) -> None:
    """Raise VolumeError if values hold NaN or infinity (looked at a few slices at a time: no
    copy of the volume)."""
    rows = max(1, _CHECK_VOXELS // max(1, values[:1].size))
    bad = sum(part.size - int(np.count_nonzero(np.isfinite(part)))
              for part in (values[first:first + rows] for first in range(0, len(values), rows)))
    if bad:
        raise VolumeError(f"{path} contains {bad} non-finite (NaN or infinite) values")


def _hu_problem(values: np.ndarray, path: Path, hu_offset: float | None = None) -> str | None:
    """Why values (a CT's voxels, hu_offset already added) do not look like HU, or None when
    they do."""
    low, high = float(values.min()), float(values.max())
    after = "" if hu_offset is None else f" (after the HU offset {hu_offset:+g})"
    span = f"{path}: values{after} run {low:g}..{high:g}"
    sample = values.ravel()[:: max(1, values.size // _HU_SAMPLE)]
    tissue = sample[sample > 500]
    if low >= 0 and np.percentile(sample, 1) < 200 and tissue.size:
        if 900 <= np.median(tissue) <= 1300:
            return (
                f"{span} with no negative values; this looks like CT stored without rescale "
                "(HU = value - 1024); pass hu_offset=-1024 (CLI: --hu-offset -1024) if so"
            )
    if high < 100:
        return f"{span}, so no bone or soft tissue above 100; these may not be HU"
    if low > -500:
        return f"{span}, with no air (about -1000 HU) below -500; these may not be HU"
    if low < -3100 or high > 40000:
        return f"{span}, outside any plausible HU range (-3100..40000); these may not be HU"
    air = _darkest_percent(sample)
    if air < _LOWEST_AIR_HU:
        why = "these may not be HU" if hu_offset is None else \
            "is the HU offset right? (values already in HU need none)"
        return (f"{span}, and the darkest 1% of them (air, about -1000 HU, besides padding) "
                f"sits at {air:g}; {why}")
    return None


def _darkest_percent(sample: np.ndarray) -> float:
    """The 1st percentile of sample's values above its minimum (a CT's padding outside the
    field of view is one constant, its minimum): where the air is."""
    rest = sample[sample > sample.min()]
    return float(np.percentile(rest, 1)) if rest.size else float(sample.min())


def read_ct(path: str | Path, hu_offset: float | None = None) -> Volume:
    """A CT in float32 HU from NIfTI, NRRD, MHA/MHD, a DICOM folder or any SimpleITK format.

    hu_offset (HU) is added to the stored values when given. Values (after the offset) that do
    not look like HU raise a RenderFMWarning that says why.
    """
    path = Path(path)
    if hu_offset is not None and not np.isfinite(hu_offset):
        raise VolumeError(f"the HU offset for {path} must be a finite number, got {hu_offset}")
    volume = from_sitk(_read_image(path), torch.float32)
    values = volume.array.numpy()
    _check_finite(values, path)
    if values.min() == values.max():
        raise VolumeError(f"{path} is constant (every voxel is {values.min():g}), not an image")
    if hu_offset is not None:
        volume.array.add_(float(hu_offset))  # in place: the CT is not copied again
    problem = _hu_problem(values, path, hu_offset)
    if problem:
        warnings.warn(problem, RenderFMWarning, stacklevel=2)
    return volume


def read_label_map(path: str | Path) -> Volume:
    """A label map as an int64 Volume on its own grid; VolumeError for fractional, non-finite or
    negative labels."""
    path = Path(path)
    image = _read_image(path)
    values = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(values.dtype, np.floating):
        _check_finite(values, path)
        fractional = values[values != np.round(values)]
        if fractional.size:
            raise VolumeError(
                f"{path} has non-integer values (e.g. {fractional.flat[0]:g}); "
                "a segmentation must hold integer labels"
            )
    if values.min() < 0:
        raise VolumeError(f"{path} has negative labels (down to {values.min():g}); use labels >= 0")
    return from_sitk(image, torch.int64)


def _same_grid(a: Volume, b: Volume) -> bool:
    """Whether a and b share shape, origin (1e-3 mm), spacing (1e-3 mm) and directions (1e-4)."""
    if a.shape != b.shape:
        return False
    return (
        np.allclose(a.ijk_to_ras[:3, 3], b.ijk_to_ras[:3, 3], rtol=0, atol=_ORIGIN_TOL_MM)
        and np.allclose(a.spacing, b.spacing, rtol=0, atol=_ORIGIN_TOL_MM)
        and np.allclose(
            a.ijk_to_ras[:3, :3] / a.spacing, b.ijk_to_ras[:3, :3] / b.spacing, atol=_DIRECTION_TOL
        )
    )


def _box(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned RAS bounding box (low, high) of the grid's corners, mm."""
    corners = volume.corners_ras()
    return corners.min(axis=0), corners.max(axis=0)


def _box_text(low: np.ndarray, high: np.ndarray) -> str:
    """A RAS box as 'R a..b, A c..d, S e..f'."""
    return ", ".join(f"{axis} {lo:.1f}..{hi:.1f}" for axis, lo, hi in zip("RAS", low, high))


def _resample(volume: Volume, ijk_to_ras: np.ndarray, shape: tuple, nearest: bool) -> Volume:
    """volume's values on the grid (ijk_to_ras, shape (K, J, I)); outside the source: nearest edge
    value for interpolation, 0 for nearest-neighbour label lookups."""
    origin, spacing, direction = _lps_geometry(ijk_to_ras)
    source = to_sitk(volume)
    resampled = sitk.Resample(
        source,
        [int(n) for n in shape[::-1]],
        sitk.Transform(),
        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear,
        origin,
        spacing,
        direction,
        0.0,
        source.GetPixelID(),
        not nearest,
    )
    return from_sitk(resampled, volume.array.dtype)


def read_segmentation(path: str | Path, reference: Volume) -> Volume:
    """A label map (int64, >= 0) from a file, on the reference CT's grid (see align_labels)."""
    path = Path(path)
    return align_labels(read_label_map(path), reference, str(path))


def align_labels(labels: Volume, reference: Volume, name: str = "segmentation") -> Volume:
    """labels on the reference CT's grid: as is when the grids match, else resampled (nearest
    neighbour, with a warning) when they overlap; VolumeError when they do not overlap."""
    if _same_grid(labels, reference):
        return labels
    low, high = _box(labels)
    ref_low, ref_high = _box(reference)
    overlap = np.minimum(high, ref_high) - np.maximum(low, ref_low)
    if np.any(overlap <= 0):
        raise VolumeError(
            f"segmentation {name} and CT do not overlap in space (segmentation spans "
            f"{_box_text(low, high)} mm, CT spans {_box_text(ref_low, ref_high)} mm)"
        )
    coverage = 100.0 * np.prod(overlap) / np.prod(ref_high - ref_low)
    warnings.warn(
        f"{name} is on a different grid than the CT; resampled it onto the CT grid (nearest "
        f"neighbour), and its box covers {coverage:.1f}% of the CT's box",
        RenderFMWarning,
        stacklevel=3,
    )
    return _resample(labels, reference.ijk_to_ras, reference.shape, nearest=True)


def resample_isotropic(volume: Volume, spacing_mm: float, labels: bool = False) -> Volume:
    """volume on isotropic_grid(volume, spacing_mm); values are interpolated linearly, or by
    nearest neighbour when labels is True."""
    ijk_to_ras, shape = isotropic_grid(volume, spacing_mm)
    return _resample(volume, ijk_to_ras, shape, nearest=labels)


def resample_spaced(volume: Volume, spacing_ijk_mm: tuple[float, float, float],
                    labels: bool = False) -> Volume:
    """volume on spaced_grid(volume, spacing_ijk_mm), interpolated as resample_isotropic."""
    ijk_to_ras, shape = spaced_grid(volume, spacing_ijk_mm)
    return _resample(volume, ijk_to_ras, shape, nearest=labels)


def isotropic_grid(volume: Volume,
                   spacing_mm: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(ijk_to_ras, shape (K, J, I)) of an isotropic grid of spacing_mm (mm) with volume's
    directions and outer corner, covering its extent (rounded to whole voxels), at least 2 voxels
    along each axis (VolumeError for a coarser spacing)."""
    if not np.isfinite(spacing_mm) or spacing_mm <= 0:
        raise VolumeError(f"the resampling spacing must be a positive number of mm: {spacing_mm}")
    return spaced_grid(volume, (spacing_mm, spacing_mm, spacing_mm))


def spaced_grid(volume: Volume, spacing_ijk_mm: tuple[float, float, float]
                ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """isotropic_grid with a spacing of its own along each of the CT's i, j and k axes (mm)."""
    spacing = np.asarray(spacing_ijk_mm, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise VolumeError(f"the resampling spacing must be positive mm along i, j and k: "
                          f"{spacing_ijk_mm}")
    extent = np.array(volume.shape[::-1]) * volume.spacing
    if np.any(spacing > extent / 2):
        named = f"{spacing[0]:g}" if np.all(spacing == spacing[0]) else \
            " x ".join(f"{side:g}" for side in spacing)
        raise VolumeError(
            f"a spacing of {named} mm is too coarse for this CT, which spans "
            f"{' x '.join(f'{side:.0f}' for side in extent)} mm: it needs at least 2 voxels "
            f"along each axis, so at most {extent.min() / 2:.3g} mm")
    i, j, k = (int(n) for n in np.maximum(1, np.round(extent / spacing)))
    directions = volume.ijk_to_ras[:3, :3] / volume.spacing
    corner = volume.voxel_to_ras(np.full(3, -0.5))
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = directions * spacing
    ijk_to_ras[:3, 3] = corner + directions @ (0.5 * spacing)
    return ijk_to_ras, (k, j, i)
