"""A 512 px CPU frame (api.render) of the sample's AGP Gaussians, CT-Bone, at 3 and 1.5 mm, with
the tile binning of the PyTorch reference (one torch sort) and of the CPU kernels (C++), in turn
in one run: medians over 4 orbit views x 3 repeats."""

import statistics
import time

from RenderFMLib import api
from RenderFMLib.camera import orbit_camera
from RenderFMLib.render.cpu import pipeline
from RenderFMLib.render.reference import tile_keys as reference_binning
from RenderFMLib.volume import read_ct

ct = read_ct("Resources/sample/ct.nii.gz")
binnings = {"torch sort": reference_binning, "C++": pipeline.tile_keys}
for spacing in (None, 1.5):
    g = api.prepare(ct, None, "CT-Bone", weights=None, spacing_mm=spacing)
    times: dict[str, list[float]] = {name: [] for name in binnings}
    for azimuth in (30, 120, 210, 300):
        camera = orbit_camera(g.center_ras(), g.bounding_radius(), azimuth, 15)
        for _ in range(3):
            for name, binning in binnings.items():
                pipeline.tile_keys = binning
                started = time.perf_counter()
                api.render(g, camera, 512)
                times[name].append(time.perf_counter() - started)
    print(len(g), {k: f"{statistics.median(v) * 1000:.0f} ms" for k, v in times.items()})
