"""The picture of README.md (python docs/network/experiments/size128/picture.py, from the
repository root): bench_network.py's held-out orbit view and close-up of `example_ct` with
CT-Muscle (a preset no network trained on), AGP alone, the shipped network, the network trained
on 128 px views, and dvr. The bench pictures are Slicer | AGP | network | dvr, 256 px a column
(downscaled 2x from 512 px)."""
from PIL import Image, ImageDraw

HERE = "docs/network/experiments/size128"
SHIPPED = Image.open("docs/network/voxel_order/fold_a/example_ct_CT-Muscle.png").convert("RGB")
WIDER = Image.open(f"{HERE}/fold_a/example_ct_CT-Muscle.png").convert("RGB")
COLUMNS = ((SHIPPED, 1, "AGP alone"), (SHIPPED, 2, "network, 96 px views (shipped)"),
           (WIDER, 2, "network, 128 px views"), (SHIPPED, 3, "dvr"))


def tile(image: Image.Image, column: int, row: int) -> Image.Image:
    """One view of a bench picture, below its label."""
    top = 24 + row * 270
    return image.crop((column * 256, top, column * 256 + 256, top + 244))


out = Image.new("RGB", (4 * 256, 2 * 264), "black")
draw = ImageDraw.Draw(out)
for row, view in enumerate(("orbit view", "close-up")):
    for index, (image, column, name) in enumerate(COLUMNS):
        out.paste(tile(image, column, row), (index * 256, row * 264 + 20))
        draw.text((index * 256 + 4, row * 264 + 4), f"{name}, {view}", fill="white")
out.save(f"{HERE}/example_ct_ct_muscle.png", optimize=True)
