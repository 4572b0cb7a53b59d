"""Transfer-function presets (3D Slicer's presets.xml and RenderFM's JSON), evaluated on HU.

Units: scalar values in HU; gradient magnitudes in HU/mm; opacities are per unit distance of 1 mm
(VTK's ScalarOpacityUnitDistance), so a sample of length ds mm has alpha = 1 - (1 - a)^ds.

Evaluation matches vtkPiecewiseFunction / vtkColorTransferFunction with the default midpoint 0.5 and
sharpness 0 that Slicer's presets use: linear between control points, the end values outside them,
colour linear in RGB. Two points at the same x make a step: left of x the curve runs to the first
point, at and right of x it starts from the second. (VTK keeps only the later point unless
AllowDuplicateScalars is on; Slicer's presets only repeat a point with the same value, where both
readings agree.)
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import numbers
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from .errors import PresetError
from .resources import bundled_preset_records, resource_path

CREDIT = (
    "Control points from 3D Slicer's Modules/Loadable/VolumeRendering/Resources/presets.xml "
    "(3D Slicer license, BSD-style; see LICENSE-3DSlicer.txt)"
)

# Control-point lists: field -> (Slicer XML attribute, numbers per point).
_LISTS = {
    "scalar_opacity": ("scalarOpacity", 2),
    "gradient_opacity": ("gradientOpacity", 2),
    "color": ("colorTransfer", 4),
}
# Shading coefficients: field -> (Slicer XML attribute, lowest, highest), VTK's allowed ranges.
_SCALARS = {
    "ambient": ("ambient", 0.0, 1.0),
    "diffuse": ("diffuse", 0.0, 1.0),
    "specular": ("specular", 0.0, 1.0),
    "specular_power": ("specularPower", 0.0, 128.0),
}


def _segment_table(xs: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Start x, start value and slope of the P + 1 pieces of the clamped curve through (xs, ys).

    Piece s covers the x with exactly s control points at or left of them: piece 0 and piece P
    are the constant end values; a zero-width piece (a step) gets slope 0 and is never used.
    """
    width = (xs[1:] - xs[:-1]).view(-1, *[1] * (ys.ndim - 1))
    slope = (ys[1:] - ys[:-1]) / torch.where(width > 0, width, torch.ones_like(width))
    slope = torch.where(width > 0, slope, torch.zeros_like(slope))
    flat = torch.zeros_like(ys[:1])
    return torch.cat([xs[:1], xs]), torch.cat([ys[:1], ys]), torch.cat([flat, slope, flat])


def _evaluate_pieces(x: torch.Tensor, xs: torch.Tensor, table: tuple) -> torch.Tensor:
    """Evaluate a _segment_table at x: one binary search and three row lookups per value."""
    x_start, y_start, slope = table
    flat = x.reshape(-1)
    piece = torch.searchsorted(xs, flat, right=True)
    offset = flat - x_start.index_select(0, piece)
    if y_start.ndim == 2:
        offset = offset.unsqueeze(-1)
    out = torch.addcmul(y_start.index_select(0, piece), slope.index_select(0, piece), offset)
    return out.view(*x.shape, *y_start.shape[1:])


def piecewise_linear(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Evaluate the piecewise-linear curve through (xs, ys) at x, clamped to the end values.

    xs: [P] non-decreasing control-point positions (same dtype and device as x); ys: [P] or
    [P, C] values. Returns x's shape, or [..., C]. Equal neighbouring xs make a step (the later
    point holds from its x on). Differentiable w.r.t. x away from the control points.
    """
    if xs.ndim != 1 or xs.numel() == 0 or ys.ndim not in (1, 2) or ys.shape[0] != xs.shape[0]:
        raise ValueError(f"need xs of shape [P] (P >= 1) and ys of [P] or [P, C]; got "
                         f"{tuple(xs.shape)} and {tuple(ys.shape)}")
    return _evaluate_pieces(x, xs.contiguous(), _segment_table(xs, ys))


@functools.lru_cache(maxsize=256)
def _tables(points: tuple, device: torch.device, dtype: torch.dtype) -> tuple:
    """Control points as (xs [P], _segment_table) on device in dtype, cached."""
    table = torch.tensor(points, dtype=dtype, device=device)
    xs = table[:, 0].contiguous()
    ys = table[:, 1] if table.shape[1] == 2 else table[:, 1:]
    return xs, _segment_table(xs, ys.contiguous())


def curve_table(points: tuple) -> tuple[torch.Tensor, ...]:
    """The pieces piecewise_linear evaluates for control points (a Preset field), float32 on the
    CPU: (xs [P], start x [P + 1], start values [P + 1(, C)], slopes [P + 1(, C)]), contiguous;
    for the CPU ray marcher (render/cpu/march.cpp), which evaluates them as _evaluate_pieces."""
    xs, (x_start, y_start, slope) = _tables(points, torch.device("cpu"), torch.float32)
    return xs, x_start.contiguous(), y_start.contiguous(), slope.contiguous()


def transparent_below(points: tuple) -> float | None:
    """The HU below which scalar-opacity points give exactly 0 (the end of their leading run of
    zero-opacity points; inf when every point is 0), or None when the lowest point is visible."""
    if points[0][1] > 0:
        return None
    below = points[0][0]
    for x, y in points[1:]:
        if y > 0:
            return below  # opacity rises from `below` (a step at x == below holds from x on)
        below = x
    return math.inf


def _evaluate(points: tuple, x: torch.Tensor) -> torch.Tensor:
    """Evaluate control points at x, on x's device, in x's dtype (float32 for integer x)."""
    x = x if x.is_floating_point() else x.float()
    xs, table = _tables(points, x.device, x.dtype)
    return _evaluate_pieces(x, xs, table)


def _checked_points(label: str, points: Iterable, size: int) -> tuple[tuple[float, ...], ...]:
    """Control points as a tuple of float tuples; PresetError (naming label) if malformed."""
    try:
        pts = tuple(tuple(float(v) for v in p) for p in points)
    except (TypeError, ValueError):
        raise PresetError(f"{label} must be a list of points made of numbers") from None
    if not pts or any(len(p) != size for p in pts):
        raise PresetError(f"{label} must hold at least one point, each of {size} numbers")
    if not all(math.isfinite(v) for p in pts for v in p):
        raise PresetError(f"{label} holds a value that is not a finite number")
    for a, b in zip(pts, pts[1:]):
        if b[0] < a[0]:
            raise PresetError(f"{label} must have non-decreasing x, but {b[0]:g} follows {a[0]:g}")
    for p in pts:
        if not all(0.0 <= v <= 1.0 for v in p[1:]):
            raise PresetError(f"{label} values must lie in [0, 1], but the point at x = {p[0]:g} "
                              f"has {', '.join(f'{v:g}' for v in p[1:])}")
    return pts


@dataclass(frozen=True)
class Preset:
    """A transfer function: opacity, gradient opacity, colour and headlight shading.

    scalar_opacity: (HU, opacity per mm in [0, 1]) points; gradient_opacity: (|grad HU| in HU/mm,
    factor in [0, 1]); color: (HU, r, g, b) with r, g, b in [0, 1]. Shading coefficients are
    dimensionless (ambient, diffuse, specular in [0, 1], specular_power in [0, 128]).
    """

    name: str
    scalar_opacity: tuple[tuple[float, float], ...]
    gradient_opacity: tuple[tuple[float, float], ...]
    color: tuple[tuple[float, float, float, float], ...]
    shade: bool
    ambient: float
    diffuse: float
    specular: float
    specular_power: float

    def __post_init__(self) -> None:
        """Check every field (PresetError naming preset and field) and store points as tuples."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise PresetError(f"a preset needs a non-empty name, not {self.name!r}")
        for field, (xml_name, size) in _LISTS.items():
            label = f"preset '{self.name}': {field} ({xml_name})"
            object.__setattr__(self, field, _checked_points(label, getattr(self, field), size))
        for field, (xml_name, low, high) in _SCALARS.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not low <= value <= high:  # type: ignore[operator]  # Real stub lacks >=
                raise PresetError(f"preset '{self.name}': {field} ({xml_name}) must be a number "
                                  f"in [{low:g}, {high:g}], not {value!r}")
            object.__setattr__(self, field, float(value))
        if self.shade not in (True, False):
            raise PresetError(f"preset '{self.name}': shade must be true or false, "
                              f"not {self.shade!r}")
        object.__setattr__(self, "shade", bool(self.shade))

    def opacity(self, hu: torch.Tensor) -> torch.Tensor:
        """Opacity per mm (in [0, 1]) at HU values; same shape, floating dtype of hu."""
        return _evaluate(self.scalar_opacity, hu)

    def gradient_factor(self, grad_magnitude: torch.Tensor) -> torch.Tensor:
        """Opacity factor (in [0, 1]) at gradient magnitudes in HU/mm; same shape."""
        return _evaluate(self.gradient_opacity, grad_magnitude)

    def rgb(self, hu: torch.Tensor) -> torch.Tensor:
        """Colour (r, g, b in [0, 1]) at HU values; shape [..., 3]."""
        return _evaluate(self.color, hu)

    def shading(self, cos_angle: torch.Tensor) -> torch.Tensor:
        """Two-sided headlight shading factor, ambient + diffuse |c| + specular |c|^power.

        cos_angle: c = n . v between the unit normal and the view direction (dimensionless).
        Returns the same shape; all ones when the preset does not shade.
        """
        c = (cos_angle if cos_angle.is_floating_point() else cos_angle.float()).abs()
        if not self.shade:
            return torch.ones_like(c)
        return self.ambient + self.diffuse * c + self.specular * c.pow(self.specular_power)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (points as lists), the inverse of from_dict."""
        return {f.name: [list(p) for p in v] if isinstance(v := getattr(self, f.name), tuple)
                else v for f in fields(self)}

    @classmethod
    def from_dict(cls, d: object) -> Preset:
        """Preset from a to_dict() dict; PresetError on missing or unknown keys or bad values."""
        if not isinstance(d, dict):
            raise PresetError(f"a preset must be a JSON object, not {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in d]
        unknown = [k for k in d if k not in names]
        problems = [f"{kind} keys {keys}" for kind, keys in (("missing", missing),
                                                             ("unknown", unknown)) if keys]
        if problems:
            raise PresetError(f"preset {d.get('name', '?')!r} has {' and '.join(problems)}; "
                              f"expected exactly {names}")
        return cls(**d)


def shifted(preset: Preset, hu: float) -> Preset:
    """preset with its scalar opacity and colour points moved by hu (HU), as Slicer's Shift
    slider moves them; gradient opacity and shading stay."""
    if isinstance(hu, bool) or not isinstance(hu, numbers.Real) or not math.isfinite(hu):
        raise PresetError(f"a shift is a finite number of HU, not {hu!r}")
    return replace(preset, name=f"{preset.name} {hu:+g} HU",
                   scalar_opacity=tuple((x + hu, *rest) for x, *rest in preset.scalar_opacity),
                   color=tuple((x + hu, *rest) for x, *rest in preset.color))


def _xml_numbers(name: str, elem: ET.Element, attr: str) -> list[float]:
    """The whitespace-separated numbers of one XML attribute."""
    text = elem.get(attr)
    if text is None:
        raise PresetError(f"preset '{name}' lacks the attribute {attr}")
    try:
        return [float(v) for v in text.split()]
    except ValueError:
        raise PresetError(f"preset '{name}': attribute {attr} is not a list of numbers "
                          f"({text.strip()!r})") from None


def _xml_points(name: str, elem: ET.Element, attr: str, size: int) -> list[list[float]]:
    """Slicer's "N v1 ... vN" list, checked and cut into points of size numbers."""
    values = _xml_numbers(name, elem, attr)
    if not values or values[0] != len(values) - 1:
        count = f"{values[0]:g}" if values else "nothing"
        raise PresetError(f"preset '{name}': attribute {attr} announces {count} values but "
                          f"holds {max(len(values) - 1, 0)}")
    flat = values[1:]
    if len(flat) % size:
        raise PresetError(f"preset '{name}': attribute {attr} holds {len(flat)} values, "
                          f"not a multiple of {size}")
    return [flat[i:i + size] for i in range(0, len(flat), size)]


def _xml_scalar(name: str, elem: ET.Element, attr: str) -> float:
    """A single number from an XML attribute."""
    values = _xml_numbers(name, elem, attr)
    if len(values) != 1:
        raise PresetError(f"preset '{name}': attribute {attr} must be one number")
    return values[0]


def _preset_from_xml(elem: ET.Element) -> Preset:
    """One <VolumeProperty> element as a Preset."""
    name = elem.get("name")
    if not name:
        raise PresetError("a VolumeProperty element has no name attribute")
    # Raw values: Preset.__post_init__ checks them and stores the points as tuples.
    values: dict[str, Any] = {f: _xml_points(name, elem, a, n) for f, (a, n) in _LISTS.items()}
    values |= {f: _xml_scalar(name, elem, a) for f, (a, _, _) in _SCALARS.items()}
    return Preset(name=name, shade=_xml_scalar(name, elem, "shade") != 0, **values)


def _by_name(presets: Iterable[Preset], path: Path) -> dict[str, Preset]:
    """Presets keyed by name in the given order; PresetError on a repeated name."""
    out: dict[str, Preset] = {}
    for preset in presets:
        if preset.name in out:
            raise PresetError(f"{path} holds two presets named '{preset.name}'")
        out[preset.name] = preset
    return out


def parse_slicer_presets(path: str | Path) -> dict[str, Preset]:
    """All <VolumeProperty> presets of a Slicer presets.xml, by name, in file order."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise PresetError(f"cannot read the presets file {path} ({exc.strerror})") from None
    except ET.ParseError as exc:
        raise PresetError(f"the presets file {path} is not valid XML ({exc})") from None
    return _by_name((_preset_from_xml(e) for e in root.iter("VolumeProperty")), path)


def _read_presets_json(path: Path) -> dict[str, Preset]:
    """Presets of a RenderFM JSON file: one to_dict() object, or {"presets": [...]}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PresetError(f"cannot read the preset file {path} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise PresetError(f"the preset file {path} is not JSON text (byte {exc.start} is not "
                          "UTF-8; a binary file?)") from None
    except json.JSONDecodeError as exc:
        raise PresetError(f"the preset file {path} is not valid JSON ({exc})") from None
    items = data.get("presets", [data]) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise PresetError(f"the preset file {path} holds neither a preset nor a list of presets")
    return _by_name((Preset.from_dict(item) for item in items), path)


def write_presets_json(presets: dict[str, Preset], path: Path) -> None:
    """Write presets to a RenderFM JSON file, with the Slicer credit, one field per line."""
    blocks = []
    for preset in presets.values():
        lines = [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in preset.to_dict().items()]
        blocks.append("    {\n" + ",\n".join(lines) + "\n    }")
    Path(path).write_text(f'{{\n  "source": {json.dumps(CREDIT)},\n  "presets": [\n'
                          + ",\n".join(blocks) + "\n  ]\n}\n", encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _bundled() -> dict[str, Preset]:
    return _by_name((Preset.from_dict(record) for record in bundled_preset_records()),
                    resource_path("presets", "presets.json"))


def bundled_presets() -> dict[str, Preset]:
    """The presets shipped in Resources/presets/presets.json (Slicer's 31), by name, in order."""
    return dict(_bundled())


def preset_names() -> list[str]:
    """Names of the bundled presets, in Slicer's order."""
    return list(_bundled())


def _lookup(name: str) -> Preset:
    """A bundled preset by exact, else case-insensitive, name; PresetError with suggestions."""
    presets = _bundled()
    if name in presets:
        return presets[name]
    folded = {k.casefold(): k for k in presets}
    if name.casefold() in folded:
        return presets[folded[name.casefold()]]
    close = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(folded[c]) for c in close)}?)" if close else ""
    raise PresetError(f"unknown preset '{name}'{hint}; choose one of: {', '.join(presets)} "
                      f"(see `renderfm presets`)")


def load_preset(name_or_path: str | Path) -> Preset:
    """A bundled preset by name, or the one preset in a .json (RenderFM) or .xml (Slicer) file."""
    path = Path(name_or_path)
    suffix = path.suffix.lower()
    if not isinstance(name_or_path, Path) and suffix not in (".json", ".xml"):
        return _lookup(str(name_or_path))
    if suffix not in (".json", ".xml"):
        raise PresetError(f"the preset file {path} must end in .json (RenderFM) or .xml (Slicer)")
    presets = parse_slicer_presets(path) if suffix == ".xml" else _read_presets_json(path)
    if len(presets) != 1:
        raise PresetError(f"the preset file {path} must hold exactly one preset but holds "
                          f"{len(presets)} ({', '.join(presets) or 'none'})")
    return next(iter(presets.values()))
