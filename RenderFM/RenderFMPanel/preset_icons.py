"""The preset menu's pictures: a small colour bar of each bundled preset (Qt, no PyTorch)."""

import numpy as np
import qt

ICON_SIZE = (48, 14)  # pixels (width, height)
BACKGROUND = 0.15  # grey level under transparent parts of the colour bar
STEP = 0.05  # opacity change between control points that counts as "the opacity changes here"


def preset_icon(preset: dict) -> qt.QIcon:
    """preset: a record of RenderFMLib.resources.bundled_preset_records(). The preset's colour,
    weighted by its opacity over a dark grey, across the HU range where its opacity changes,
    with the opacity curve in white (0 at the bottom, 1 at the top)."""
    width, height = ICON_SIZE
    hu, opacity = np.array(preset["scalar_opacity"], dtype=float).T
    steps = np.flatnonzero(np.abs(np.diff(opacity)) > STEP)
    low, high = (hu[steps[0]], hu[steps[-1] + 1]) if len(steps) else (hu[0], hu[-1])
    pad = max(0.1 * (high - low), 1.0)
    samples = np.linspace(low - pad, high + pad, width)
    alpha = np.interp(samples, hu, opacity)
    color = np.array(preset["color"], dtype=float)
    rgb = np.stack([np.interp(samples, color[:, 0], color[:, c]) for c in (1, 2, 3)], axis=1)
    rgb = rgb * alpha[:, None] + BACKGROUND * (1.0 - alpha[:, None])
    pixmap = qt.QPixmap(width, height)
    painter = qt.QPainter(pixmap)
    for x in range(width):
        painter.setPen(qt.QColor.fromRgbF(*rgb[x]))
        painter.drawLine(x, 0, x, height - 1)
    painter.setPen(qt.QColor("white"))
    curve = (1.0 - alpha) * (height - 1)
    for x in range(1, width):
        painter.drawLine(qt.QPointF(x - 1, curve[x - 1]), qt.QPointF(x, curve[x]))
    painter.end()
    return qt.QIcon(pixmap)
