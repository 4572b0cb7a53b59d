"""Slicer's 3D views as RenderFM targets, and the comparison layouts (Slicer application)."""

import slicer

from . import library

COMPARE_LAYOUT_ID = 50601  # a layout id of our own
COMPARE_LAYOUT = (  # two 3D views side by side, nothing else
    '<layout type="horizontal" split="true">'
    ' <item><view class="vtkMRMLViewNode" singletontag="1">'
    '  <property name="viewlabel" action="default">1</property></view></item>'
    ' <item><view class="vtkMRMLViewNode" singletontag="2" type="secondary">'
    '  <property name="viewlabel" action="default">2</property></view></item>'
    "</layout>")


def view_target(index: int):
    """RenderFMLib's ViewTarget for the index-th 3D view of the current layout, or None: its
    render window, view node, active camera node, and forceRender to redraw it."""
    layout_manager = slicer.app.layoutManager()
    if index >= layout_manager.threeDViewCount:
        return None
    widget = layout_manager.threeDWidget(index)
    view, view_node = widget.threeDView(), widget.mrmlViewNode()
    camera_node = slicer.modules.cameras.logic().GetViewActiveCameraNode(view_node)
    target = library("RenderFMLib.slicer.overlay").ViewTarget
    return target(view.renderWindow(), view_node, camera_node, view.forceRender)


def first_view_target():
    """The first 3D view's target; switches to the four-up layout if the layout has none."""
    layout_manager = slicer.app.layoutManager()
    if layout_manager.threeDViewCount == 0:
        layout_manager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpView)
    return view_target(0)


def comparison_targets(single_view: bool) -> tuple:
    """Switch to the comparison layout; (native view target, RenderFM view target): one 3D
    view for both when single_view, else two side by side."""
    layout_manager = slicer.app.layoutManager()
    if single_view:
        layout_manager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutOneUp3DView)
        return view_target(0), view_target(0)
    layout_node = layout_manager.layoutLogic().GetLayoutNode()
    if not layout_node.IsLayoutDescription(COMPARE_LAYOUT_ID):
        layout_node.AddLayoutDescription(COMPARE_LAYOUT_ID, COMPARE_LAYOUT)
    layout_manager.setLayout(COMPARE_LAYOUT_ID)
    return view_target(0), view_target(1)
