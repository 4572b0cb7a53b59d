"""Time of a dvr window against its per-frame field: python field_time.py CT PRESET SIDE
[HU_OFFSET]. A SIDE px window at the centre of a 512 px view, 10 orbit views (azimuths 0-324
degrees, elevation 15); medians in ms."""

import statistics
import sys
import time

from RenderFMLib.api import load_ct_as_read, prepare
from RenderFMLib.camera import orbit_camera
from RenderFMLib.groundtruth import dvr
from RenderFMLib.transfer import load_preset

path, name, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
ct = load_ct_as_read(path, float(sys.argv[4]) if len(sys.argv) > 4 else None, "cpu")
preset = load_preset(name)
g = prepare(ct, None, preset, weights=None)  # for the CT's centre and bounding radius
scene = dvr.DvrScene(ct, preset)
field_s, window_s = [], []
untimed = dvr._field


def timed(*args):
    started = time.perf_counter()
    field = untimed(*args)
    field_s.append(time.perf_counter() - started)
    return field


dvr._field = timed
for azimuth in range(0, 360, 36):
    camera = orbit_camera(g.center_ras(), g.bounding_radius(), azimuth, 15)
    started = time.perf_counter()
    scene.render(camera, 512, window=(256 - side // 2, 256 - side // 2, side))
    window_s.append(time.perf_counter() - started)
print(tuple(ct.array.shape), name, side, f"window {statistics.median(window_s) * 1000:.0f} ms, "
      f"field {statistics.median(field_s) * 1000:.0f} ms")
