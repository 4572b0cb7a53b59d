"""Slicer's own (native) volume rendering of a volume node in one 3D view, from a RenderFM preset.

Opacity units, measured headless on the slicer-core wheel (Testing/slicer/test_slicer_native.py):
ScalarOpacityUnitDistance ends up 1.0 mm everywhere: Slicer's presets keep VTK's default, the
conversion here does too, and Slicer's displayable manager leaves it (the rendered vtkVolume's
property reads 1.0). So the CPU ray cast applies opacity per millimetre (DESIGN.md section 3): a
uniform slab L mm thick (centre to centre of its end voxels) with opacity a = 0.05 rendered
0.871 for 1 - (1 - a)^L = 0.872 on 1 mm voxels (L = 40) and 0.843 for 0.842 on 3 mm voxels
(L = 36). The GPU ray cast applies it per voxel (Slicer issue #3716): the 3 mm slab rendered
0.455, as 1 - (1 - a)^(L / 3 mm) = 0.460 predicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from ..crop import CropBox
from ..errors import PresetError, RenderFMError
from ..transfer import Preset, load_preset
from .context import SlicerContext
from .roi import crop_display
from .view import OffscreenThreeDView

NATIVE_METHODS = {
    "cpu": "Slicer CPU ray cast (opacity per mm)",
    "gpu": "Slicer GPU ray cast (opacity per voxel, Slicer issue #3716)",
}
"""Slicer's native volume rendering methods by RenderFM's short name, with a label for displays."""

_DISPLAY_CLASSES = {
    "cpu": "vtkMRMLCPURayCastVolumeRenderingDisplayNode",
    "gpu": "vtkMRMLGPURayCastVolumeRenderingDisplayNode",
}


def _add_points(function: Any, points: tuple[tuple[float, ...], ...]) -> None:
    """Fill a vtkPiecewiseFunction or vtkColorTransferFunction with control points.

    A repeated x (a step) moves to the next higher double, as Slicer's presets parser does, so
    both points stay (VTK would otherwise replace the first).
    """
    import slicer

    add = function.AddRGBPoint if hasattr(function, "AddRGBPoint") else function.AddPoint
    function.RemoveAllPoints()
    previous = None
    for x, *values in points:
        if previous is not None and x <= previous:
            x = slicer.vtkMRMLVolumePropertyNode.NextHigher(previous)
        add(x, *values)
        previous = x


def volume_property_node(preset: Preset) -> Any:
    """A vtkMRMLVolumePropertyNode (not in any scene) holding preset's transfer functions.

    Scalar opacity (HU -> opacity per mm), gradient opacity (|grad HU| per mm -> factor), colour
    (HU -> RGB), shading and linear interpolation, as Slicer's presets.xml would give them.
    """
    import slicer
    import vtk

    node = slicer.vtkMRMLVolumePropertyNode()
    node.SetName(preset.name)
    functions = {"scalar_opacity": vtk.vtkPiecewiseFunction(),
                 "gradient_opacity": vtk.vtkPiecewiseFunction(),
                 "color": vtk.vtkColorTransferFunction()}
    for field, function in functions.items():
        _add_points(function, getattr(preset, field))
    node.SetScalarOpacity(functions["scalar_opacity"])
    node.SetGradientOpacity(functions["gradient_opacity"])
    node.SetColor(functions["color"])
    volume_property = node.GetVolumeProperty()
    volume_property.SetInterpolationTypeToLinear()
    volume_property.SetShade(int(preset.shade))
    volume_property.SetAmbient(preset.ambient)
    volume_property.SetDiffuse(preset.diffuse)
    volume_property.SetSpecular(preset.specular)
    volume_property.SetSpecularPower(preset.specular_power)
    node.CalculateEffectiveRange()
    return node


def _points(function: Any, width: int) -> tuple[tuple[float, ...], ...]:
    """A vtkPiecewiseFunction's (x, value) or a vtkColorTransferFunction's (x, r, g, b) points."""
    values = []
    for index in range(function.GetSize()):
        node = [0.0] * (width + 2)  # VTK adds midpoint and sharpness
        function.GetNodeValue(index, node)
        values.append(tuple(node[:width]))
    return tuple(values)


def preset_from_property_node(node: Any) -> Preset:
    """The Preset a vtkMRMLVolumePropertyNode holds now (after a preset change or a Shift, which
    moves its points): volume_property_node's inverse. PresetError if VTK holds values a preset
    cannot (e.g. no opacity points)."""
    volume_property = node.GetVolumeProperty()
    return Preset(
        name=node.GetName() or "Slicer volume property",
        scalar_opacity=cast(Any, _points(volume_property.GetScalarOpacity(), 2)),
        gradient_opacity=cast(Any, _points(volume_property.GetGradientOpacity(), 2)),
        color=cast(Any, _points(volume_property.GetRGBTransferFunction(), 4)),
        shade=bool(volume_property.GetShade()), ambient=volume_property.GetAmbient(),
        diffuse=volume_property.GetDiffuse(), specular=volume_property.GetSpecular(),
        specular_power=volume_property.GetSpecularPower())


def _preset_node(context: SlicerContext, preset: Preset | str | Path) -> Any:
    """Slicer's own preset node for a name its logic knows exactly, else our conversion of the
    Preset (a Preset object, or a name or .json/.xml file that load_preset reads)."""
    if isinstance(preset, str):
        node = context.volume_rendering_logic.GetPresetByName(preset)
        if node is not None:
            return node
    if isinstance(preset, (str, Path)):
        preset = load_preset(preset)  # PresetError with suggestions when nothing matches
    if not isinstance(preset, Preset):
        raise PresetError(f"a preset is a Preset or a name, not {type(preset).__name__}")
    return volume_property_node(preset)


def show_volume_rendering(context: SlicerContext, view: OffscreenThreeDView | Any,
                          volume_node: Any, preset: Preset | str | Path,
                          method: str = "cpu", crop: CropBox | None = None) -> Any:
    """Render volume_node with Slicer's own volume rendering in view only; returns the display
    node (vtkMRMLCPURayCastVolumeRenderingDisplayNode or the GPU one, see NATIVE_METHODS).

    view: an OffscreenThreeDView, or the vtkMRMLViewNode of any 3D view (e.g. Slicer's own).

    preset: a bundled name (Slicer's own preset node from its logic is copied) or a Preset (from
    RenderFM JSON or Slicer XML; converted by volume_property_node). crop: a box (RAS mm, may
    be rotated) the rendering is cropped to through an ROI node, as Slicer's Crop checkbox does.
    Other volume rendering display nodes of volume_node stop showing in this view.
    """
    if method not in _DISPLAY_CLASSES:
        raise RenderFMError(f"unknown native rendering method '{method}'; choose one of "
                            f"{', '.join(NATIVE_METHODS)}")
    source = _preset_node(context, preset)
    logic = context.volume_rendering_logic
    view_node: Any = getattr(view, "view_node", view)
    view_id = view_node.GetID()
    _hide_in_view(context, volume_node, view_id)
    display = logic.CreateVolumeRenderingDisplayNode(_DISPLAY_CLASSES[method])
    context.scene.AddNode(display)
    volume_node.AddAndObserveDisplayNodeID(display.GetID())
    logic.UpdateDisplayNodeFromVolumeNode(display, volume_node, None, None, False)
    property_node = display.GetVolumePropertyNode()
    property_node.Copy(source)
    property_node.SetName(f"{volume_node.GetName()} {source.GetName()}")
    display.SetViewNodeIDs([view_id])
    crop_display(display, crop)
    display.SetVisibility(True)
    return display


def remove_volume_rendering(display: Any, keep: Sequence[Any] = ()) -> None:
    """Remove a display node made by show_volume_rendering, and its volume property and ROI
    nodes unless they are in `keep` (nodes it shares with the user's display), from its scene
    (nothing if it has left the scene already)."""
    scene = display.GetScene()
    if scene is None:
        return
    owned = [display.GetVolumePropertyNode(), display.GetROINode()]
    scene.RemoveNode(display)
    for node in owned:
        if node is not None and node not in keep:
            scene.RemoveNode(node)


def _hide_in_view(context: SlicerContext, volume_node: Any, view_id: str) -> None:
    """Stop volume_node's volume rendering display nodes from showing in the view view_id.

    A display node with no view list shows in every view: it gets the scene's other 3D views.
    """
    import slicer

    views = [node.GetID() for node in _nodes(context.scene, "vtkMRMLViewNode")]
    for index in range(volume_node.GetNumberOfDisplayNodes()):
        display = volume_node.GetNthDisplayNode(index)
        if not isinstance(display, slicer.vtkMRMLVolumeRenderingDisplayNode) or \
                not display.GetVisibility(view_id):
            continue
        shown = list(display.GetViewNodeIDs()) or views
        display.SetViewNodeIDs([v for v in shown if v != view_id])
        if not display.GetViewNodeIDs():
            display.SetVisibility(False)


def _nodes(scene: Any, class_name: str) -> list[Any]:
    """All nodes of a class in the scene."""
    return [scene.GetNthNodeByClass(i, class_name)
            for i in range(scene.GetNumberOfNodesByClass(class_name))]
