"""The training manifest: a JSON file listing the CTs to train on and to hold out.

    {"scans": [
        {"ct": "ct.nii.gz", "segmentation": null, "presets": ["CT-Bone", "CT-AAA"],
         "hu_offset": null, "heldout": false},
        ...]}

Paths are relative to the manifest's folder. `segmentation` may be a label map, "threshold" or
null; `heldout` entries are never trained on and are scored at each evaluation. Every problem is
one RenderFMError naming the manifest and the entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import RenderFMError
from ..transfer import Preset, load_preset

_KEYS = {"ct", "segmentation", "presets", "hu_offset", "heldout"}


@dataclass(frozen=True)
class ScanEntry:
    """One CT of the manifest: its path, segmentation (a path, "threshold" or None), presets,
    HU offset (for CTs stored without rescale) and whether it is held out."""

    ct: Path
    segmentation: Path | str | None
    presets: tuple[Preset, ...]
    hu_offset: float | None
    heldout: bool

    @property
    def name(self) -> str:
        """A short name: the CT's file name, with its folder's in front (ct.nii.gz -> chest_ct)."""
        stem = self.ct.name.split(".")[0]
        return f"{self.ct.parent.name}_{stem}" if stem == "ct" else stem


def read_manifest(path: str | Path) -> list[ScanEntry]:
    """The entries of manifest `path`; RenderFMError naming the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RenderFMError(f"manifest {path} cannot be read: {error}") from None
    scans = data.get("scans") if isinstance(data, dict) else None
    if not isinstance(scans, list) or not scans:
        raise RenderFMError(f"manifest {path} must be a JSON object with a non-empty list "
                            '"scans"')
    entries = [_entry(path, number, item) for number, item in enumerate(scans)]
    if all(entry.heldout for entry in entries):
        raise RenderFMError(f"manifest {path}: every scan is held out; nothing to train on")
    return entries


def _entry(path: Path, number: int, item: object) -> ScanEntry:
    where = f"manifest {path}, scan {number}"
    if not isinstance(item, dict) or "ct" not in item or not set(item) <= _KEYS:
        raise RenderFMError(f"{where}: an entry is an object with \"ct\" and optionally "
                            f"{', '.join(sorted(_KEYS - {'ct'}))}")
    ct = path.parent / str(item["ct"])
    if not ct.exists():
        raise RenderFMError(f"{where}: CT {ct} does not exist")
    segmentation = item.get("segmentation")
    if segmentation is not None and segmentation != "threshold":
        segmentation = path.parent / str(segmentation)
        if not segmentation.exists():
            raise RenderFMError(f"{where}: segmentation {segmentation} does not exist")
    names = item.get("presets", [])
    if not isinstance(names, list) or not names:
        raise RenderFMError(f"{where}: \"presets\" must be a non-empty list of preset names")
    offset = item.get("hu_offset")
    if offset is not None and not isinstance(offset, (int, float)):
        raise RenderFMError(f"{where}: \"hu_offset\" must be a number of HU or null")
    return ScanEntry(ct, segmentation, tuple(load_preset(str(name)) for name in names),
                     None if offset is None else float(offset), bool(item.get("heldout", False)))
