"""Time of a dvr window: the per-frame field (_field) against the whole render."""
import sys, time, statistics
import torch
from RenderFMLib.api import load_ct_as_read, prepare
from RenderFMLib.groundtruth import dvr
from RenderFMLib.camera import orbit_camera
from RenderFMLib.transfer import load_preset
path, name, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
hu = float(sys.argv[4]) if len(sys.argv) > 4 else None
ct = load_ct_as_read(path, hu, "cpu"); preset = load_preset(name)
g = prepare(ct, None, preset, weights=None)
scene = dvr.DvrScene(ct, preset)
spent = []
orig = dvr._field
def timed(*a):
    t = time.perf_counter(); r = orig(*a); spent.append(time.perf_counter() - t); return r
dvr._field = timed
total = []
for az in range(0, 360, 36):
    cam = orbit_camera(g.center_ras(), g.bounding_radius(), az, 15)
    t = time.perf_counter(); scene.render(cam, 512, window=(256 - side // 2, 256 - side // 2, side))
    total.append(time.perf_counter() - t)
print(tuple(ct.array.shape), name, side, f"window {statistics.median(total)*1000:.0f} ms, field {statistics.median(spent)*1000:.0f} ms")
