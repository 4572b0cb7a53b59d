"""The page of `renderfm view`: a toolbar over the two views and a status line (Vuetify 3).

State names (the server sets and reads them): preset, presets, quality, qualities, groups,
visible_groups, preparing, progress (percent), progress_message, status, measurement, error,
crop (the Crop switch), crop_r / crop_a / crop_s ([min, max] RAS mm), crop_limits (the CT's
bounds, 6 numbers), shift (HU), and cameras (the two views' cameras, for checks).
The element ids (render, cancel, measure, reset-camera, crop, crop-r, crop-a, crop-s, shift,
status, measurement, progress, and the views' native-view / renderfm-view) are what the browser
test finds.
"""

from __future__ import annotations

from typing import Any

from .session import SHIFT_LIMIT_HU

LINE = ("height: 1.6em; padding: 0 8px; font-family: monospace; white-space: nowrap; "
        "overflow: hidden")  # a fixed height: the views keep their size as the lines change


def build_page(server: Any, templates: tuple[str, str], actions: dict) -> Any:
    """The page's layout; actions: render, cancel, measure, reset_camera (callables)."""
    from trame.ui.vuetify3 import SinglePageLayout
    from trame.widgets import client, html
    from trame.widgets import vuetify3 as v3

    with SinglePageLayout(server, full_height=True) as layout:
        layout.icon.hide()
        layout.title.set_text("RenderFM")
        layout.title.style = "flex: none"
        with layout.toolbar:
            layout.toolbar.density = "compact"
            v3.VSpacer()
            v3.VBtn("Render", id="render", click=actions["render"], disabled=("preparing",),
                    variant="tonal", classes="mx-1")
            v3.VBtn("Cancel", id="cancel", click=actions["cancel"], disabled=("!preparing",),
                    variant="text", classes="mx-1")
            v3.VSelect(v_model=("preset",), items=("presets",), label="Preset",
                       disabled=("preparing",), density="compact", hide_details=True,
                       style="max-width: 260px", classes="mx-1")
            v3.VSelect(v_model=("quality",), items=("qualities",), label="Quality",
                       density="compact", hide_details=True, style="max-width: 220px",
                       classes="mx-1")
            with v3.VSelect(v_model=("visible_groups",), items=("groups",), label="Groups shown",
                            multiple=True, density="compact", hide_details=True,
                            style="max-width: 200px", classes="mx-1"):
                with v3.Template(v_slot_selection="{ index }"):
                    html.Span("{{ visible_groups.length }} of {{ groups.length }}",
                              v_if="index === 0")
            v3.VBtn("Reset camera", id="reset-camera", click=actions["reset_camera"],
                    variant="text", classes="mx-1")
            v3.VBtn("Measure", id="measure", click=actions["measure"], variant="text",
                    classes="mx-1")
        with layout.content:
            with html.Div(style="display: flex; flex-direction: column; height: 100%"):
                v3.VProgressLinear(id="progress", model_value=("progress",),
                                   active=("preparing",), height=4)
                _crop_and_shift()
                with html.Div(style="display: flex; flex: 1; min-height: 0"):
                    for element_id, title, template in zip(
                            ("native-view", "renderfm-view"),
                            ("Slicer volume rendering (CPU ray cast)", "RenderFM"), templates):
                        with html.Div(id=element_id, style="flex: 1; display: flex; "
                                      "flex-direction: column; border: 1px solid #333"):
                            html.Div(title, style="color: #ccc; padding: 2px 8px")
                            with html.Div(style="flex: 1; display: flex; min-height: 0"):
                                client.ServerTemplate(name=template)
                html.Div("{{ preparing ? progress_message : status }}", id="status",
                         style=LINE)
                html.Div("{{ error || measurement }}", id="measurement",
                         style=LINE)
    return layout


def _crop_and_shift() -> None:
    """The row under the toolbar: the Crop switch, the box's R, A, S range sliders (RAS mm, 1 mm
    steps, within the CT's bounds) and the Shift slider (HU), as in Slicer's Volume Rendering."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with html.Div(style="display: flex; align-items: center; gap: 16px; padding: 0 12px; "
                  "height: 40px; flex: none"):
        v3.VSwitch(v_model=("crop",), id="crop", label="Crop", color="primary",
                   density="compact", hide_details=True, style="flex: none")
        for index, axis in enumerate("RAS"):
            v3.VRangeSlider(v_model=(f"crop_{axis.lower()}",), id=f"crop-{axis.lower()}",
                            label=axis, min=(f"crop_limits[{2 * index}]",),
                            max=(f"crop_limits[{2 * index + 1}]",), step=1,
                            density="compact", hide_details=True, thumb_label=True)
        v3.VSlider(v_model=("shift",), id="shift", label="Shift (HU)", min=-SHIFT_LIMIT_HU,
                   max=SHIFT_LIMIT_HU, step=10, density="compact", hide_details=True,
                   thumb_label=True)
