"""A segmentation from HU thresholds alone, for CTs without TotalSegmentator (`--seg threshold`).

Four labels (THRESHOLD_LABELS; groups skeleton, heart_and_vessels, lungs, other) from textbook HU
ranges and a little morphology. Sizes are in mm, so the rules mean the same on any grid. The
result is coarse, but good enough to give bone, contrast-filled vessels, air and soft tissue
their own looks.

- body: the largest region above -500 HU (skin, fat and anything denser) after a 6 mm opening,
  which cuts the thin shell of a table or head holder off the patient. The region is grown back
  by 6 mm within the > -500 HU voxels, and the holes of each axial slice are filled (lungs,
  bowel gas). Air around the patient and a table that does not merge with the patient are left
  out, and so are arms that lie apart from the trunk.
- vessels: contrast-filled blood is 150..500 HU. A vessel core is where that range is wide and
  runs head to foot: it survives a 3 mm erosion and then an opening with a 45 mm line along the
  body axis (aorta, venae cavae, enhanced heart chambers). Cancellous bone has the same HU, but
  a vertebral body is at most about 30 mm tall between its discs; on the non-contrast sample
  nothing passes. Vessels are the 150..500 HU voxels, not bone, connected to a core (branches
  such as the iliac and renal arteries, and enhanced organs that touch them, included). The
  core grown 15 mm through 150..500 HU, plus 3 mm, is kept out of the bone, so an arterial-phase
  aorta (>= 300 HU) lying against the spine is not taken for bone; branches farther out that
  reach 300 HU can be. Thin vessels far from a core are not found; a non-contrast CT gets none.
- bone: cortical bone is above 300 HU, which no unenhanced soft tissue reaches (muscle, liver
  and blood are 30..80 HU, fresh clot is up to about 90 HU). Voxels >= 300 HU outside the vessel
  zone seed the bone. Cancellous bone is only 100..300 HU, and at a few mm per voxel most of a
  rib is a partial-volume mix, so the bone also takes the voxels >= 120 HU (above any unenhanced
  soft tissue, noise included) that connect to a seed and lie within 15 mm of one: about half
  a lumbar vertebral body's width, so its cancellous core is reached from the cortex. The limit
  keeps a contrast-enhanced organ (liver or spleen 100..150 HU) that touches a rib from being
  taken in whole. A 3 mm closing and filling each axial slice's holes up to 20 cm^2 then add
  the marrow that cortical shells enclose (a femoral head or a lumbar vertebral body is 10..15
  cm^2 across; the pelvic ring and the inside of the skull are far larger and stay open; the
  spinal canal, 2..3 cm^2, and small pockets of brain walled in by the skull base are filled).
  Regions under 50 mm^3 (specks, small calcifications) are dropped. There is no opening: at 3 mm
  voxels it would erase the ribs. Costal cartilage (about 100 HU) and osteoporotic bone below
  120 HU that no cortex encloses (much of the sample's sacrum) are missed.
- lung: air in the body, HU < -400. Lung parenchyma is -950..-700 HU, and its edges at 3 mm
  reach about -500 HU. Only air more than about 3 mm in from the body's surface counts, so the
  skin's partial-volume edge and skin folds are left out, and only regions of at least 100 mm^3.
  This finds the lungs and airways, but also bowel gas and the sinuses.
- soft tissue: the rest of the body in -150..150 HU (fat, muscle, organs). Other body voxels,
  for example -400..-150 HU partial volume, stay 0, and so does everything outside the body.

On 2 CPU cores it takes about 1.5 s for the bundled sample (1.4 M voxels of 3 mm) and 7 s for
the same CT at 1.5 mm (11 M voxels).
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
import torch

from ..volume import Volume

THRESHOLD_LABELS = {"bone": 201, "vessels": 202, "lung": 203, "soft_tissue": 204}

BODY_HU = -500.0
BODY_OPENING_MM = 6.0
BONE_SEED_HU = 300.0
BONE_GROW_HU = 120.0
BONE_GROW_MM = 15.0
CLOSING_MM = 3.0
MAX_MARROW_HOLE_MM2 = 2000.0
MIN_BONE_MM3 = 50.0
VESSEL_HU = (150.0, 500.0)
VESSEL_CORE_MM = 3.0
VESSEL_RUN_MM = 45.0
VESSEL_REACH_MM = 15.0
LUNG_HU = -400.0
SKIN_MM = 3.0
MIN_LUNG_MM3 = 100.0
SOFT_TISSUE_HU = (-150.0, 150.0)


def threshold_segmentation(ct: Volume) -> Volume:
    """Labels 201 bone, 202 vessels, 203 lung/air, 204 soft tissue (0 elsewhere) for a CT in HU.

    An int64 label map on the CT's grid (and device); see the module text for the rules.
    """
    hu = ct.array.detach().cpu().numpy().astype(np.float32, copy=False)
    grid = _Grid(np.asarray(ct.spacing[::-1], dtype=np.float64), _axial_axis(ct))
    codes = torch.from_numpy(_tissue_codes(hu, grid))  # 1 byte a voxel until the end
    labels = torch.zeros(codes.shape, dtype=torch.int64)
    for code, label in enumerate(THRESHOLD_LABELS.values(), start=1):  # no int64 index copy
        labels[codes == code] = label
    return Volume(labels.to(ct.array.device), ct.ijk_to_ras)


def _tissue_codes(hu: np.ndarray, grid: _Grid) -> np.ndarray:
    """uint8 [K, J, I]: 0 none, then 1 + the index of the tissue in THRESHOLD_LABELS. Each mask
    is dropped once used: on a 512 x 512 x 600 CT every one of them is 157 MB."""
    body = _body(hu, grid)
    blood = body & (hu >= VESSEL_HU[0]) & (hu < VESSEL_HU[1])
    core = grid.axial_run(grid.erosion(blood, VESSEL_CORE_MM), VESSEL_RUN_MM)
    near_vessel = np.zeros_like(core)
    if core.any():
        near_vessel = grid.dilation(grid.grow(core, blood, VESSEL_REACH_MM), VESSEL_CORE_MM)
    bone = _bone(hu, grid, body, near_vessel)
    del near_vessel
    vessels = grid.reconstruct(core, blood & ~bone)
    del core, blood
    lung = grid.erosion(body, SKIN_MM) & (hu < LUNG_HU) & ~bone
    lung = grid.remove_small(lung, MIN_LUNG_MM3)
    soft = body & (hu >= SOFT_TISSUE_HU[0]) & (hu < SOFT_TISSUE_HU[1]) & ~bone & ~vessels
    del body
    codes = np.zeros(hu.shape, dtype=np.uint8)
    for tissue, mask in (("soft_tissue", soft), ("lung", lung), ("vessels", vessels),
                         ("bone", bone)):  # later tissues win
        codes[mask] = 1 + list(THRESHOLD_LABELS).index(tissue)
    return codes


def _body(hu: np.ndarray, grid: _Grid) -> np.ndarray:
    """The body: the largest dense region, opened, dilated back, its slices' holes filled."""
    dense = hu > BODY_HU
    body = grid.largest_region(grid.opening(dense, BODY_OPENING_MM))
    return grid.fill_slice_holes(grid.dilation(body, BODY_OPENING_MM) & dense, max_mm2=None)


def _bone(hu: np.ndarray, grid: _Grid, body: np.ndarray,
          near_vessel: np.ndarray) -> np.ndarray:
    """Bone grown from dense seeds away from vessels, closed, marrow filled, specks dropped."""
    seeds = body & (hu >= BONE_SEED_HU) & ~near_vessel
    bone = grid.grow(seeds, body & (hu >= BONE_GROW_HU) & ~near_vessel, BONE_GROW_MM)
    bone = grid.fill_slice_holes(grid.closing(bone, CLOSING_MM), MAX_MARROW_HOLE_MM2)
    return grid.remove_small(bone & body & ~near_vessel, MIN_BONE_MM3)


def _axial_axis(ct: Volume) -> int:
    """The array axis (0 = K, 1 = J, 2 = I) whose direction is closest to superior-inferior."""
    directions = ct.ijk_to_ras[:3, :3] / ct.spacing
    return 2 - int(np.argmax(np.abs(directions[2])))


class _Grid:
    """Binary morphology on one voxel grid (SimpleITK filters), radii and sizes in mm.

    Masks are bool arrays in the Volume's [K, J, I] order; spacing is per array axis.
    """

    def __init__(self, spacing: np.ndarray, axial_axis: int) -> None:
        self.spacing = spacing
        self.axial = axial_axis
        self.voxel_mm3 = float(np.prod(spacing))
        self.pixel_mm2 = float(np.prod(np.delete(spacing, axial_axis)))

    def _image(self, mask: np.ndarray) -> sitk.Image:
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing([float(s) for s in self.spacing[::-1]])
        return image

    def _radius(self, mm: float) -> list[int]:
        """Per-axis radius in voxels in SimpleITK's (x, y, z) order, at least 1."""
        return [max(1, int(round(mm / s))) for s in self.spacing[::-1]]

    @staticmethod
    def _mask(image: sitk.Image) -> np.ndarray:
        return sitk.GetArrayViewFromImage(image).astype(bool)  # a view: no uint8 copy

    def opening(self, mask: np.ndarray, mm: float) -> np.ndarray:
        return self._mask(sitk.BinaryMorphologicalOpening(self._image(mask), self._radius(mm)))

    def closing(self, mask: np.ndarray, mm: float) -> np.ndarray:
        return self._mask(sitk.BinaryMorphologicalClosing(self._image(mask), self._radius(mm)))

    def dilation(self, mask: np.ndarray, mm: float) -> np.ndarray:
        return self._mask(sitk.BinaryDilate(self._image(mask), self._radius(mm)))

    def erosion(self, mask: np.ndarray, mm: float) -> np.ndarray:
        return self._mask(sitk.BinaryErode(self._image(mask), self._radius(mm)))

    def axial_run(self, mask: np.ndarray, mm: float) -> np.ndarray:
        """The voxels of mask that lie on a run of at least mm along the axial axis (an opening
        with a line)."""
        radius = [0, 0, 0]
        radius[2 - self.axial] = max(1, int(round(mm / 2 / self.spacing[self.axial])))
        return self._mask(sitk.BinaryMorphologicalOpening(self._image(mask), radius, sitk.sitkBox))

    def grow(self, seeds: np.ndarray, allowed: np.ndarray, mm: float) -> np.ndarray:
        """The allowed voxels within mm of a seed and connected to one through such voxels."""
        seeds = seeds & allowed
        if not seeds.any():
            return seeds
        return self.reconstruct(seeds, allowed & self._within(seeds, mm))

    def _within(self, seeds: np.ndarray, mm: float) -> np.ndarray:
        """The voxels within mm of a seed (the float32 distance map is freed on return)."""
        distance = sitk.SignedMaurerDistanceMap(
            self._image(seeds), insideIsPositive=False, squaredDistance=False,
            useImageSpacing=True)
        return sitk.GetArrayViewFromImage(distance) <= mm

    def reconstruct(self, seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """The connected parts of allowed that hold a seed."""
        if not (seeds & allowed).any():
            return np.zeros_like(allowed)
        marker = self._image(seeds & allowed)
        return self._mask(sitk.BinaryReconstructionByDilation(marker, self._image(allowed)))

    def largest_region(self, mask: np.ndarray) -> np.ndarray:
        if not mask.any():
            return mask
        ranked = sitk.RelabelComponent(sitk.ConnectedComponent(self._image(mask)))
        return sitk.GetArrayViewFromImage(ranked) == 1

    def remove_small(self, mask: np.ndarray, min_mm3: float) -> np.ndarray:
        """mask without its connected regions (26-connected) smaller than min_mm3.

        SimpleITK drops the small regions from its uint32 region map (numpy's bincount and fancy
        indexing would copy that map to int64 twice: 2.5 GB on a 512 x 512 x 600 CT)."""
        smallest = math.ceil(min_mm3 / self.voxel_mm3 - 1e-9)  # voxels a kept region has
        regions = sitk.ConnectedComponent(self._image(mask), True)
        kept = sitk.RelabelComponent(regions, minimumObjectSize=smallest, sortByObjectSize=False)
        del regions
        return sitk.GetArrayViewFromImage(kept) > 0

    def fill_slice_holes(self, mask: np.ndarray, max_mm2: float | None) -> np.ndarray:
        """mask with the holes of each axial slice filled (only those up to max_mm2 if given)."""
        planes = np.moveaxis(mask, self.axial, 0)
        filled = np.empty_like(planes)
        for index, plane in enumerate(planes):
            image = sitk.GetImageFromArray(plane.astype(np.uint8))
            holes = self._mask(sitk.BinaryFillhole(image)) & ~plane
            if max_mm2 is not None and holes.any():
                regions = sitk.GetArrayFromImage(
                    sitk.ConnectedComponent(sitk.GetImageFromArray(holes.astype(np.uint8))))
                small = np.bincount(regions.ravel()) * self.pixel_mm2 <= max_mm2
                small[0] = False
                holes = small[regions]
            filled[index] = plane | holes
        return np.moveaxis(filled, 0, self.axial)

