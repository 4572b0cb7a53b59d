"""Make docs/slicer_side_by_side.png: the module's comparison, headless on slicer-core.

    VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow python docs/slicer_side_by_side.py

Slicer's CPU ray cast, RenderFM's layer with AGP alone and RenderFM's layer after the module's
"AGP + fine-tune" (300 s budget) in offscreen Slicer 3D views with one camera (CT-AAA on the
bundled sample; the view is not one fine-tuning trains on); prints what Measure reports for the
two RenderFM views and the fine-tune's summary.
"""

import numpy as np
from PIL import Image

from RenderFMLib.camera import orbit_camera
from RenderFMLib.resources import resource_path
from RenderFMLib.slicer.context import SlicerContext
from RenderFMLib.slicer.jobs import FinetuneSettings, prepare, start_prepare
from RenderFMLib.slicer.nodes import segmentation_node, volume_node
from RenderFMLib.slicer.overlay import RenderFMOverlay, ViewTarget
from RenderFMLib.slicer.side_by_side import SideBySide
from RenderFMLib.slicer.view import OffscreenThreeDView, read_pixels
from RenderFMLib.volume import read_ct, read_label_map

PRESET, SIDE, BACKGROUND = "CT-AAA", 384, (0.1, 0.1, 0.15)


def main() -> None:
    ct = read_ct(resource_path("sample", "ct.nii.gz"))
    labels = read_label_map(resource_path("sample", "segmentation.nii.gz"))
    context = SlicerContext.headless()
    volume = volume_node(context, ct, "CT")
    segmentation = segmentation_node(context, labels, "segmentation")
    overlay = RenderFMOverlay(context)
    agp = prepare(context, volume, segmentation, PRESET, device="cpu")
    job = start_prepare(context, volume, segmentation, PRESET, device="cpu",
                        finetune=FinetuneSettings(budget_s=300.0))
    tuned = job.result()
    print(job.finetuned.summary())
    camera = orbit_camera(ct.center_ras(), ct.bounding_radius() * 0.8, 25.0, 10.0)
    panels = []
    for gaussians in (agp, tuned):
        native, ours = (OffscreenThreeDView(context, (SIDE, SIDE), BACKGROUND) for _ in range(2))
        for view in (native, ours):
            view.set_camera(camera)
        comparison = SideBySide(overlay, gaussians, volume, PRESET, "cpu")
        comparison.start(ViewTarget.from_offscreen(native), ViewTarget.from_offscreen(ours))
        print(comparison.measure())
        if not panels:
            panels.append(native.capture())
        ours.render()
        panels.append(read_pixels(ours.render_window))
        comparison.stop()
        native.close()
        ours.close()
    gap = np.full((SIDE, 6, 3), 255, np.uint8)
    picture = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    Image.fromarray(picture).save("docs/slicer_side_by_side.png")
    overlay.dispose()


if __name__ == "__main__":
    main()
