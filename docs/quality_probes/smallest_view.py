"""Testing/bench/bench_quality.py with fine-tuning's new views drawn at sides from SMALLEST x
`size` (default 0.375: 192 px of 512) to `size`, instead of from half of it: FreshViews._fresh
replaced by the same steps with that lower bound. The other arguments are bench_quality.py's.

    SMALLEST=0.375 python docs/quality_probes/smallest_view.py --scans popi00_thorax \
        --presets CT-Bone --out docs/quality_probes/popi00_thorax_views192
"""

import os
import runpy
import sys

import torch

from RenderFMLib.optimize import sampling

SMALLEST = float(os.environ.get("SMALLEST", "0.375"))


def fresh(self: sampling.FreshViews) -> sampling.Window:
    camera = self._camera()
    size = int(torch.randint(int(self.size * SMALLEST), self.size + 1, (1,),
                             generator=self.generator))
    side = min(self.crop, size)
    if self._uniform() < sampling.FOREGROUND_CROPS:
        x, y = sampling._project(camera, size, self._anatomy())
    else:
        x, y = (size * self._uniform() for _ in range(2))
    box = sampling._box(x, y, side, size)
    frame = self.scene.render(camera, size, window=box)
    return sampling.Window(camera, size, box, frame.rgb.float(), frame.alpha.float())


sampling.FreshViews._fresh = fresh
print("smallest view", SMALLEST, flush=True)
sys.argv = ["bench_quality.py", *sys.argv[1:]]
runpy.run_path("Testing/bench/bench_quality.py", run_name="__main__")
