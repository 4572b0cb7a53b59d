"""The one place that finds the project's Resources/ folder (presets, the bundled sample, weights),
and the bundled presets' table with the default preset, read without PyTorch (the Slicer module
fills its preset menu before PyTorch is installed; transfer.py makes them Presets).

Resources/ lives at the top of the repository, as a Slicer extension expects. It is found:
- in a built wheel: packaged as RenderFMLib/Resources (see pyproject.toml);
- in a source checkout, an editable install or inside Slicer: beside the RenderFMLib folder.
"""

import json
from pathlib import Path

DEFAULT_PRESET = "CT-Chest-Contrast-Enhanced"  # the look of a preparation that names none

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    """The Resources/ folder in use; raises FileNotFoundError if the installation lacks it."""
    for candidate in (_PACKAGE_DIR / "Resources", _PACKAGE_DIR.parent / "Resources"):
        if (candidate / "presets").is_dir():
            return candidate
    raise FileNotFoundError(
        f"RenderFM's Resources folder is missing (looked in {_PACKAGE_DIR / 'Resources'} and "
        f"{_PACKAGE_DIR.parent / 'Resources'}); reinstall RenderFM"
    )


def resource_path(*parts: str) -> Path:
    """Path of a file under Resources/, e.g. resource_path("presets", "presets.json")."""
    return resources_dir().joinpath(*parts)


def bundled_preset_records() -> list[dict]:
    """The bundled presets (Slicer's 31, in Slicer's order) as stored in
    Resources/presets/presets.json: dicts with the name and the control points (HU -> opacity
    per mm, HU -> RGB in [0, 1]), as transfer.Preset.from_dict reads them."""
    with open(resource_path("presets", "presets.json"), encoding="utf-8") as file:
        return json.load(file)["presets"]
