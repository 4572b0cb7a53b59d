"""Ground truth: the renderers RenderFM is trained and judged against (not the PyTorch twin of
the render stages, which is render/reference/).

    renderers.py      render_groundtruth(name, ...): dvr, pathtraced, slicer-cpu, slicer-gpu
    dvr.py            emission-absorption ray marching, the model of Slicer's CPU ray cast
    pathtraced.py     Mitsuba 3 volumetric path tracing (mitsuba_loader.py: variants, LLVM)
    slicer_native.py  Slicer's own CPU and GPU ray cast, headless
    cache.py          `renderfm make-gt`: a folder of ground-truth images for training
"""
