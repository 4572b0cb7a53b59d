"""The MRML scene and the Slicer module logics RenderFM works with, headless or inside Slicer.

Headless (the `slicer-core` wheel, no Qt): `SlicerContext.headless()` builds a scene and the logics
in the order measured to work (../shared/SLICER_HEADLESS.md): application logic, colour logic with
its default colour nodes (module logic "Colors"), the segmentations logic before any segmentation
work (it registers the representation converters), and the volume rendering logic reading Slicer's
presets.xml (bundled in Resources/presets) as module logic "VolumeRendering".
Inside Slicer: `SlicerContext.from_application()` takes the running application's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import RenderFMError
from ..resources import resource_path

PRESETS_FILE = "presets.xml"
"""The file name Slicer's volume rendering logic reads from its module share directory."""


def require_slicer() -> ModuleType:
    """The `slicer` package (Slicer's own, or the slicer-core wheel); RenderFMError if absent."""
    try:
        import slicer
    except ImportError:
        raise RenderFMError(
            "this needs 3D Slicer's Python packages: run it inside Slicer, or install "
            "renderfm[slicer] (the slicer-core wheel) for headless use"
        ) from None
    return slicer


def bundled_presets_dir() -> Path:
    """The folder holding the bundled copy of Slicer's presets.xml (Resources/presets)."""
    return resource_path("presets")


@dataclass
class SlicerContext:
    """A scene with the logics that act on it.

    scene: vtkMRMLScene; app_logic: vtkSlicerApplicationLogic; volume_rendering_logic:
    vtkSlicerVolumeRenderingLogic; segmentations_logic: vtkSlicerSegmentationsModuleLogic.
    """

    scene: Any
    app_logic: Any
    volume_rendering_logic: Any
    segmentations_logic: Any

    @classmethod
    def headless(cls, presets_dir: Path | None = None) -> SlicerContext:
        """A fresh scene and logics on the slicer-core wheel (no Qt, no slicer.app).

        presets_dir: a folder holding Slicer's presets.xml (default: the bundled copy).
        Raises RenderFMError if slicer-core is missing or the folder holds no presets.xml.
        """
        slicer = require_slicer()
        import vtk

        folder = Path(presets_dir) if presets_dir is not None else bundled_presets_dir()
        if not (folder / PRESETS_FILE).is_file():
            raise RenderFMError(f"{folder} holds no {PRESETS_FILE} (Slicer's volume rendering "
                                "presets); pass a folder that does")
        scene = slicer.vtkMRMLScene()
        app_logic = slicer.vtkSlicerApplicationLogic()
        app_logic.SetMRMLScene(scene)
        app_logic.SetViewLogics(vtk.vtkCollection())  # 3D views register their view logic here
        app_logic.SetSliceLogics(vtk.vtkCollection())
        _add_color_logic(slicer, app_logic)
        segmentations = _module_logic(slicer.vtkSlicerSegmentationsModuleLogic(), app_logic,
                                      "Segmentations")
        rendering = slicer.vtkSlicerVolumeRenderingLogic()
        rendering.SetModuleShareDirectory(str(folder))
        _module_logic(rendering, app_logic, "VolumeRendering")
        return cls(scene, app_logic, rendering, segmentations)

    @classmethod
    def from_application(cls) -> SlicerContext:
        """The running 3D Slicer's scene and logics; RenderFMError outside the application."""
        slicer = require_slicer()
        app = getattr(slicer, "app", None)
        modules = getattr(slicer, "modules", None)
        if app is None or modules is None or getattr(slicer, "mrmlScene", None) is None:
            raise RenderFMError("no running 3D Slicer application here (slicer.app is missing); "
                                "use SlicerContext.headless() outside Slicer")
        return cls(slicer.mrmlScene, app.applicationLogic(), modules.volumerendering.logic(),
                   modules.segmentations.logic())


def _module_logic(logic: Any, app_logic: Any, name: str) -> Any:
    """Connect a module logic to the application logic and its scene, registered under name."""
    logic.SetMRMLApplicationLogic(app_logic)
    logic.SetMRMLScene(app_logic.GetMRMLScene())
    app_logic.SetModuleLogic(name, logic)
    return logic


def _add_color_logic(slicer: ModuleType, app_logic: Any) -> None:
    """The colour logic with Slicer's built-in colour tables, as module logic "Colors".

    Without Slicer's share folder it cannot find colour files and logs an error saying so; that
    error is muted here (the built-in tables are all the scene needs).
    """
    colors = slicer.vtkSlicerColorLogic()
    showing = colors.GetGlobalWarningDisplay()
    colors.GlobalWarningDisplayOff()
    try:
        _module_logic(colors, app_logic, "Colors")
        colors.AddDefaultColorNodes()
    finally:
        colors.SetGlobalWarningDisplay(showing)
    app_logic.SetColorLogic(colors)
