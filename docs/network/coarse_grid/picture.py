"""The picture of docs/network/coarse_grid/README.md: Slicer's CT head (3.2 x 3.2 x 1.5 mm) with
CT-AAA, drawn by the network of the fold that never trained on it on the CT's own grid and on
the 2 mm grid prepare() now reads it on, beside Slicer's CPU ray cast and dvr (held-out views of
bench_network.py: an orbit view and a close-up, 512 px), then halved.

    python docs/network/coarse_grid/picture.py docs/network/loso/fold_c_lps_weights.safetensors
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "Testing/bench")
sys.path.insert(0, str(Path(__file__).parent))
from bench_quality import FRAME_SIZE, evaluate, find_scan, picture  # noqa: E402
from coarse_probe import on_own_grid  # noqa: E402
from PIL import Image  # noqa: E402

from RenderFMLib.api import prepare  # noqa: E402
from RenderFMLib.groundtruth.renderers import groundtruth_problem  # noqa: E402
from RenderFMLib.optimize.views import heldout_cameras  # noqa: E402
from RenderFMLib.volume import read_ct  # noqa: E402

COLUMNS = [("slicer-cpu", "Slicer CPU ray cast"), ("own", "network, the CT's own grid"),
           ("refined", "network, 2 mm"), ("dvr", "dvr")]


def main(weights: str, preset: str = "CT-AAA") -> None:
    scan = find_scan("cthead_dicom")
    ct = read_ct(scan.ct, hu_offset=scan.hu_offset)
    models = {"own": on_own_grid(ct, scan.seg, preset, weights),
              "refined": prepare(ct, scan.seg, preset, weights=weights)}
    cameras = heldout_cameras(prepare(ct, scan.seg, preset, weights=None), 4, 2)
    shown = [cameras[0], cameras[4]]
    slicer = groundtruth_problem("slicer-cpu") is None
    _, images = evaluate(ct, preset, models, shown, [FRAME_SIZE], "cpu", slicer, "picture")
    out = Path(__file__).with_name("cthead_ct_aaa.png")
    with tempfile.TemporaryDirectory() as folder:
        full = Path(folder) / out.name
        picture(images, [(0, "orbit view"), (1, "close-up")], full,
                f"cthead_dicom / {preset}, {FRAME_SIZE} px, held-out views", COLUMNS)
        image = Image.open(full)
        image.resize((image.width // 2, image.height // 2), Image.LANCZOS).save(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
