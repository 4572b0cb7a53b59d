"""MRML glue: RenderFM's volumes, presets and cameras as Slicer scene nodes, and Slicer's own views.

Every module here imports `slicer` (and `vtk`), so only the Slicer module, its tests and the
headless Slicer renderer import them, and lazily. They run both inside 3D Slicer (its scene and
module logics, `SlicerContext.from_application()`) and headless on the `slicer-core` wheel
(`SlicerContext.headless()`, an offscreen EGL 3D view), see ../shared/SLICER_HEADLESS.md.
"""
