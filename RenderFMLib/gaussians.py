"""SixDGaussians: a prepared CT as N 6D Gaussians on one torch device, with save/load.

Parameters are stored as channels.py defines them (raw values an optimizer updates); the
view-independent slicing terms (S_c, K, S_dd^-1) are computed once and cached unless the
parameters require gradients. Files are .safetensors (tensors) whose metadata holds the source
volume's geometry and the preset as JSON, and SHA-256 checksums of both (model_file.py): no
pickle anywhere. Version 1 files, from before specular_sh, are read with specular_sh 0: no white
light, so they render as they did.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import arguments as check
from .channels import STORED_FIELDS
from .errors import ModelFileError
from .files import write_atomic
from .frame import check_device
from .model_file import (
    CHECKSUM_KEY,
    check_geometry,
    check_values,
    checksums,
    read_safetensors,
    save_safetensors,
    verify_checksums,
)
from .render.reference.precompute import precompute
from .volume import grid_bounding_radius, grid_center_ras

FORMAT = "renderfm-6dgs"
VERSION = "2"  # 1: no specular_sh
_WIDTHS = {field.name: field.stop - field.start for field in STORED_FIELDS}
DERIVED_CHUNK = 1 << 18  # Gaussians per precompute() call when caching the slicing terms


class SixDGaussians:
    """N 6D Gaussians in patient RAS millimetres.

    means [N, 3] mu_p RAS mm (block centres); dir_means [N, 3] mu_d; rgb [N, 3] albedo in [0, 1];
    sh [N, 9] scalar shading (degree-2 SH) of the albedo; specular_sh [N, 9] the white specular
    term's (channels.py); opacity_logits [N]; log_scales [N, 6] (3 position in log mm, 3
    direction); corr_logits [N, 15]; labels [N] int64 segmentation class (0 = none).
    ijk_to_ras [4, 4] and volume_shape (K, J, I) describe the CT the Gaussians came from; preset
    is the transfer function's dict (transfer.Preset.to_dict) or None.
    """

    # The channels.py fields, set by name in __init__.
    dir_means: torch.Tensor
    rgb: torch.Tensor
    sh: torch.Tensor
    opacity_logits: torch.Tensor
    log_scales: torch.Tensor
    corr_logits: torch.Tensor
    specular_sh: torch.Tensor

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        labels: torch.Tensor,
        ijk_to_ras: np.ndarray,
        volume_shape: tuple[int, int, int],
        preset: dict | None = None,
    ) -> None:
        self.means = params["means"]
        for name in _WIDTHS:
            setattr(self, name, params[name])
        self.labels = labels
        self.ijk_to_ras = np.asarray(ijk_to_ras, dtype=np.float64)
        k, j, i = volume_shape
        self.volume_shape = (int(k), int(j), int(i))
        self.preset = preset
        self._derived: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._check()

    def _check(self) -> None:
        n = self.means.shape[0]
        expected = {"means": 3, **_WIDTHS}
        for name, width in expected.items():
            shape = tuple(getattr(self, name).shape)
            if shape != ((n,) if width == 1 else (n, width)):
                raise ValueError(f"SixDGaussians.{name} has shape {shape}, "
                                 f"expected N={n} x {width}")
            if getattr(self, name).device != self.means.device:
                raise ValueError("all SixDGaussians tensors must be on one device")
        if tuple(self.labels.shape) != (n,):
            raise ValueError(f"labels has shape {tuple(self.labels.shape)}, expected ({n},)")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def device(self) -> torch.device:
        return self.means.device

    def params(self) -> dict[str, torch.Tensor]:
        """The parameter tensors by name (means and the channels.py fields)."""
        return {"means": self.means, **{name: getattr(self, name) for name in _WIDTHS}}

    def derived(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(S_c, K, S_dd^-1) [N, 3, 3] each; cached unless scales or correlations need grad."""
        if self.log_scales.requires_grad or self.corr_logits.requires_grad:
            return precompute(self.log_scales, self.corr_logits)
        if self._derived is None:
            self._derived = self._precompute_in_chunks()
        return self._derived

    def _precompute_in_chunks(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """precompute() over DERIVED_CHUNK Gaussians at a time, into the outputs: the same
        values, with temporaries bounded by the chunk rather than by N."""
        like = self.log_scales
        out = (like.new_empty(len(self), 3, 3), like.new_empty(len(self), 3, 3),
               like.new_empty(len(self), 3, 3))
        for start in range(0, len(self), DERIVED_CHUNK):
            part = precompute(self.log_scales[start:start + DERIVED_CHUNK],
                              self.corr_logits[start:start + DERIVED_CHUNK])
            for whole, values in zip(out, part):
                whole[start:start + DERIVED_CHUNK] = values
        return out

    def select(self, mask: torch.Tensor) -> SixDGaussians:
        """The Gaussians where mask [N] bool is true (the cached slicing terms follow)."""
        picked = SixDGaussians(
            {name: value[mask] for name, value in self.params().items()},
            self.labels[mask], self.ijk_to_ras, self.volume_shape, self.preset,
        )
        if self._derived is not None:
            s_c, k, s_dd_inv = self._derived
            picked._derived = (s_c[mask], k[mask], s_dd_inv[mask])
        return picked

    def to(self, device: str | torch.device) -> SixDGaussians:
        """A copy on another device."""
        return SixDGaussians(
            {name: value.to(device) for name, value in self.params().items()},
            self.labels.to(device), self.ijk_to_ras, self.volume_shape, self.preset,
        )

    def center_ras(self) -> np.ndarray:
        """Centre [3] RAS mm of the source CT's voxel grid."""
        return grid_center_ras(self.ijk_to_ras, self.volume_shape)

    def bounding_radius(self) -> float:
        """Radius in mm of the sphere around center_ras() that holds the source CT's grid."""
        return grid_bounding_radius(self.ijk_to_ras, self.volume_shape)

    def save(self, path: str | Path) -> None:
        """Write a .safetensors file: the tensors, plus geometry, preset and checksums as JSON
        metadata; whole or not at all (files.write_atomic: OSError naming path if it cannot be
        written)."""
        tensors = {name: value.detach().cpu().contiguous() for name, value in self.params().items()}
        tensors["labels"] = self.labels.detach().cpu().contiguous()
        metadata = {
            "format": FORMAT,
            "version": VERSION,
            "ijk_to_ras": json.dumps(self.ijk_to_ras.tolist()),
            "volume_shape": json.dumps(list(self.volume_shape)),
            "preset": json.dumps(self.preset),
        }
        metadata[CHECKSUM_KEY] = checksums(tensors, metadata)
        write_atomic(path, lambda partial: save_safetensors(tensors, partial, metadata))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SixDGaussians:
        """Read a file written by save() onto `device`; ModelFileError naming the file if it is
        not one, or if its contents are damaged (model_file.py: checksums, finite values, means
        inside the CT's box, labels, geometry)."""
        check.path("SixDGaussians.load", "path", path,
                   "a path (str or os.PathLike) to a .safetensors file")
        path, device = Path(path), check_device(device)
        if not path.is_file():
            raise ModelFileError(f"Gaussians file {path} does not exist")
        metadata, tensors = _read(path)
        ijk_to_ras, volume_shape = check_geometry(path, metadata)
        params = {name: value for name, value in tensors.items() if name != "labels"}
        if metadata["version"] == "1" and "specular_sh" not in params and "means" in params:
            params["specular_sh"] = params["means"].new_zeros(len(params["means"]),
                                                              _WIDTHS["specular_sh"])
        try:
            gaussians = cls(params, tensors["labels"], ijk_to_ras, volume_shape,
                            json.loads(metadata["preset"]))
        except (KeyError, ValueError) as error:
            raise ModelFileError(f"{path} is not a RenderFM Gaussians file ({error})") from None
        verify_checksums(path, tensors, metadata)
        check_values(path, gaussians.params(), gaussians.labels, ijk_to_ras, volume_shape)
        return gaussians if device.type == "cpu" else gaussians.to(device)


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors on the CPU) of a RenderFM safetensors file of this format version."""
    metadata, tensors = read_safetensors(path, ModelFileError, "a RenderFM Gaussians file")
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a RenderFM Gaussians file (it has no RenderFM "
                             "metadata)")
    if metadata.get("version") not in ("1", VERSION):
        raise ModelFileError(f"{path} is not a RenderFM Gaussians file (its format version "
                             f"{metadata.get('version')} is not 1 or {VERSION})")
    return metadata, tensors
