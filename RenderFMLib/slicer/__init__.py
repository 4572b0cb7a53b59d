"""RenderFM in 3D Slicer, headless: everything the module does on an MRML scene, without Qt.

    context.py       SlicerContext: the scene and module logics, Slicer's own or headless
    nodes.py         CT and segmentation nodes <-> Volumes and label maps
    camera.py        camera nodes <-> RenderFM Cameras
    view.py          an offscreen 3D view and reading its pixels
    native.py        Slicer's own volume rendering of a CT with a preset
    jobs.py          preparing Gaussians from scene nodes, in a worker thread
    layer.py         ImageLayer: a frame drawn over a 3D view
    follow.py        CameraFollower: drafts while the camera moves, full size once it settles
    link.py          CameraLink: two views' cameras kept equal
    overlay.py       RenderFMOverlay: RenderFM shown in 3D views, following their cameras
    side_by_side.py  SideBySide: Slicer's volume rendering beside RenderFM, and the measurement
    dependencies.py  what Slicer's Python still needs (PyTorch, CuPy, TotalSegmentator)

The Qt side (the panel, the parameter node, message boxes) is the module's RenderFMPanel package.
Most modules here import `slicer` (and `vtk`), so only the Slicer module,
its tests and the headless Slicer renderer import them, and lazily. They run both inside 3D
Slicer (`SlicerContext.from_application()`) and headless on the `slicer-core` wheel
(`SlicerContext.headless()`, an offscreen EGL 3D view), see ../shared/SLICER_HEADLESS.md.
"""
