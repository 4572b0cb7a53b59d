"""The headless Slicer context: logics registered, Slicer's 31 presets found, clear errors."""

import filecmp
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer")

from RenderFMLib.errors import RenderFMError  # noqa: E402
from RenderFMLib.resources import resource_path  # noqa: E402
from RenderFMLib.slicer.context import SlicerContext, bundled_presets_dir  # noqa: E402
from RenderFMLib.transfer import preset_names  # noqa: E402


def test_logics_are_registered_with_the_application_logic(context) -> None:
    app = context.app_logic
    assert app.GetMRMLScene() is context.scene
    assert app.GetModuleLogic("VolumeRendering") is context.volume_rendering_logic
    assert app.GetModuleLogic("Segmentations") is context.segmentations_logic
    assert isinstance(app.GetModuleLogic("Colors"), slicer.vtkSlicerColorLogic)
    # Slicer's built-in colour tables, which volume and label map display nodes refer to.
    assert context.scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None
    assert context.scene.GetNodeByID("vtkMRMLColorTableNodeLabels") is not None


def test_every_bundled_preset_is_in_slicers_logic(context) -> None:
    names = preset_names()
    assert len(names) == 31
    missing = [n for n in names if context.volume_rendering_logic.GetPresetByName(n) is None]
    assert missing == []
    assert context.volume_rendering_logic.GetPresetByName("no such preset") is None


def test_bundled_presets_xml_is_slicers_file(shared_data: Path) -> None:
    bundled = resource_path("presets", "presets.xml")
    assert bundled.parent == bundled_presets_dir()
    assert filecmp.cmp(bundled, shared_data / "slicer_presets.xml", shallow=False)


def test_a_presets_folder_without_presets_xml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderFMError, match="presets.xml"):
        SlicerContext.headless(tmp_path)


def test_from_application_outside_slicer_says_so() -> None:
    with pytest.raises(RenderFMError, match="headless"):
        SlicerContext.from_application()
