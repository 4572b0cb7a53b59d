"""Time `dvr` target windows as fine-tuning draws them (12 new views of up to 512 px, each
rendered 3 times): the whole window, the shading field (dvr._field) and the march, medians in
ms; and save the windows' bits (safetensors), or compare them with a saved run (a change to the
marcher must keep them).

    python docs/quality_probes/dvr_windows_timing.py CT PRESET SPACING|none save|compare FILE
    python docs/quality_probes/dvr_windows_timing.py \
        ../shared/data/more_ct/popi00_thorax/ct.nii.gz CT-Bone none save runs/popi.safetensors
"""

import statistics
import sys
import time

import torch
from safetensors.torch import load_file, save_file

from RenderFMLib.api import prepare
from RenderFMLib.groundtruth import dvr
from RenderFMLib.optimize import sampling
from RenderFMLib.volume import read_ct

parts: dict[str, list[float]] = {"march": [], "field": []}


def timed(name, function):
    def run(*args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        parts[name].append(time.perf_counter() - started)
        return result
    return run


dvr.march, dvr._field = timed("march", dvr.march), timed("field", dvr._field)
path, preset, spacing, mode, file = sys.argv[1:6]
ct = read_ct(path)
gaussians = prepare(ct, None, preset, weights=None,
                    spacing_mm=None if spacing == "none" else float(spacing))
scene = dvr.DvrScene(ct, preset)
fresh = sampling.FreshViews(gaussians, scene, 512, sampling.window_side(len(gaussians)))
fresh.fresh_share = 1.0
windows = [fresh.sample() for _ in range(12)]
for times in parts.values():
    times.clear()
whole = []
for _ in range(3):
    for window in windows:
        started = time.perf_counter()
        scene.render(window.camera, window.size, window=window.box)
        whole.append(time.perf_counter() - started)
print(f"window {1000 * statistics.median(whole):.1f} ms, "
      + ", ".join(f"{name} {1000 * statistics.median(times):.1f} ms"
                  for name, times in parts.items()))
images = {str(n): torch.cat([w.rgb.flatten(), w.alpha.flatten()]) for n, w in enumerate(windows)}
if mode == "save":
    save_file(images, file)
else:
    saved = load_file(file)
    print("same bits", saved.keys() == images.keys()
          and all(torch.equal(saved[n], image) for n, image in images.items()))
