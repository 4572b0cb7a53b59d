"""Tests of RenderFMLib.transfer: Slicer preset parsing, RenderFM's JSON, evaluation on HU."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from data_paths import SHARED_DATA  # noqa: E402

from RenderFMLib.errors import PresetError
from RenderFMLib.resources import resource_path
from RenderFMLib.transfer import (
    CREDIT,
    Preset,
    bundled_presets,
    load_preset,
    parse_slicer_presets,
    piecewise_linear,
    preset_names,
    write_presets_json,
)


@pytest.fixture
def slicer_xml() -> Path:
    path = SHARED_DATA / "slicer_presets.xml"
    if not path.is_file():
        pytest.skip(f"shared test data missing: {path} (see shared/data/README.md section 3)")
    return path


def t64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# --- parsing -------------------------------------------------------------------------------------

def test_all_slicer_presets_parse_in_file_order(slicer_xml):
    elements = list(ET.parse(slicer_xml).getroot().iter("VolumeProperty"))
    presets = parse_slicer_presets(slicer_xml)
    assert len(presets) == 31
    assert list(presets) == [e.get("name") for e in elements]
    for elem in elements:
        preset = presets[elem.get("name")]
        for attr, points, size in (("scalarOpacity", preset.scalar_opacity, 2),
                                   ("gradientOpacity", preset.gradient_opacity, 2),
                                   ("colorTransfer", preset.color, 4)):
            count = int(elem.get(attr).split()[0])
            assert len(points) == count // size, (preset.name, attr)
        assert preset.shade == (elem.get("shade") == "1")
        assert preset.specular_power == float(elem.get("specularPower"))


def test_parsed_values_of_ct_bone(slicer_xml):
    bone = parse_slicer_presets(slicer_xml)["CT-Bone"]
    assert bone.scalar_opacity == ((-3024, 0), (-16.4458, 0), (641.385, 0.715686), (3071, 0.705882))
    assert bone.gradient_opacity == ((0, 1), (255, 1))
    assert bone.color[1] == (-16.4458, 0.729412, 0.254902, 0.301961)
    assert (bone.shade, bone.ambient, bone.diffuse, bone.specular, bone.specular_power) == (
        True, 0.1, 0.9, 0.2, 10.0)


# --- hand-computed values ------------------------------------------------------------------------

def test_ct_bone_opacity_by_hand():
    bone = load_preset("CT-Bone")
    hu = t64(-16.4458, 641.385, 312.4696, 5000, -5000, 3071)
    # points (-3024, 0) (-16.4458, 0) (641.385, 0.715686) (3071, 0.705882):
    # -16.4458 -> 0; 641.385 -> 0.715686; midway (-16.4458 + 641.385) / 2 = 312.4696
    # -> 0.715686 / 2 = 0.357843; above 3071 clamped to 0.705882; below -3024 clamped to 0.
    expected = t64(0.0, 0.715686, 0.357843, 0.705882, 0.0, 0.705882)
    torch.testing.assert_close(bone.opacity(hu), expected, rtol=0, atol=1e-9)


def test_ct_bone_rgb_by_hand():
    bone = load_preset("CT-Bone")
    # a quarter of the way from -16.4458 to 641.385: -16.4458 + 0.25 * 657.8308 = 148.0119,
    # colour (0.729412, 0.254902, 0.301961) + 0.25 * (0.17647, 0.560784, 0.25098)
    # = (0.7735295, 0.395098, 0.364706);
    # midway between 641.385 and 3071 (= 1856.1925): ((0.905882 + 1) / 2, (0.815686 + 1) / 2,
    # (0.552941 + 1) / 2) = (0.952941, 0.907843, 0.7764705)
    rgb = bone.rgb(t64(148.0119, 1856.1925))
    expected = torch.tensor([[0.7735295, 0.395098, 0.364706], [0.952941, 0.907843, 0.7764705]],
                            dtype=torch.float64)
    torch.testing.assert_close(rgb, expected, rtol=0, atol=1e-9)


def test_ct_aaa_and_chest_contrast_opacity_by_hand():
    aaa = load_preset("CT-AAA")
    # 155 HU: t = (155 - 143.556) / (166.222 - 143.556) = 11.444 / 22.666 = 0.5048972,
    #   0 + t * 0.686275 = 0.3464983
    # 300 HU: t = (300 - 214.389) / (419.736 - 214.389) = 85.611 / 205.347 = 0.4169089,
    #   0.696078 + t * (0.833333 - 0.696078) = 0.696078 + t * 0.137255 = 0.7533008
    torch.testing.assert_close(aaa.opacity(t64(155, 300)), t64(0.3464983, 0.7533008),
                               rtol=0, atol=1e-7)
    chest = load_preset("CT-Chest-Contrast-Enhanced")
    # midway (67.0106 + 251.105) / 2 = 159.0578 -> 0.446429 / 2 = 0.2232145
    # 1000 HU: t = (1000 - 439.291) / (3071 - 439.291) = 560.709 / 2631.709 = 0.2130589,
    #   0.625 + t * (0.616071 - 0.625) = 0.625 - t * 0.008929 = 0.6230976
    torch.testing.assert_close(chest.opacity(t64(159.0578, 1000)), t64(0.2232145, 0.6230976),
                               rtol=0, atol=1e-7)


def test_gradient_opacity_by_hand():
    skull = load_preset("uCT-Skull")
    # points (0, 1) (0, 1) (46.9644546508789, 0.1) (128.360549926758, 1) (255, 1):
    # 0 -> 1; half of 46.96445 = 23.4822273 -> (1 + 0.1) / 2 = 0.55; 46.96445 -> 0.1;
    # midway (46.96445 + 128.36055) / 2 = 87.6625023 -> 0.55; 300 -> clamped 1; -5 -> 1
    g = t64(0, 23.48222732543945, 46.9644546508789, 87.66250228881846, 300, -5)
    torch.testing.assert_close(skull.gradient_factor(g), t64(1, 0.55, 0.1, 0.55, 1, 1),
                               rtol=0, atol=1e-9)
    fetal = load_preset("US-Fetal")
    # points (-10, 0) (-1, 1) (20, 1) (90, 1): -5.5 is midway -> 0.5; -20 -> 0; 0 -> 1
    torch.testing.assert_close(fetal.gradient_factor(t64(-5.5, -20, 0)), t64(0.5, 0, 1),
                               rtol=0, atol=1e-12)


# --- piecewise_linear ----------------------------------------------------------------------------

def test_piecewise_linear_step_at_coincident_points():
    xs, ys = t64(0, 10, 10, 20), t64(0, 0, 1, 0.5)
    got = piecewise_linear(t64(-5, 5, 9.999, 10, 15, 25), xs, ys)
    # left of 10 the curve follows (0, 0)-(10, 0); from 10 on it runs (10, 1)-(20, 0.5)
    torch.testing.assert_close(got, t64(0, 0, 0, 1, 0.75, 0.5), rtol=0, atol=1e-12)


def test_piecewise_linear_coincident_end_points_and_single_point():
    start = piecewise_linear(t64(-1, 0, 5), t64(0, 0, 10), t64(0.2, 0.5, 1))
    torch.testing.assert_close(start, t64(0.2, 0.5, 0.75), rtol=0, atol=1e-12)
    end = piecewise_linear(t64(5, 10, 20), t64(0, 10, 10), t64(0, 0.5, 0.8))
    torch.testing.assert_close(end, t64(0.25, 0.8, 0.8), rtol=0, atol=1e-12)
    single = piecewise_linear(t64(-1, 3), t64(2), t64(0.4))
    torch.testing.assert_close(single, t64(0.4, 0.4), rtol=0, atol=0)


def test_piecewise_linear_channels_and_shapes():
    xs = t64(0, 1)
    ys = torch.tensor([[0, 1, 2], [1, 1, 0]], dtype=torch.float64)
    x = torch.full((2, 3, 4), 0.25, dtype=torch.float64)
    got = piecewise_linear(x, xs, ys)
    assert got.shape == (2, 3, 4, 3)
    torch.testing.assert_close(got[1, 2, 3], t64(0.25, 1, 1.5), rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        piecewise_linear(x, t64(), t64())


def test_piecewise_linear_gradient():
    xs, ys = t64(-100, 0, 50, 200), t64(0.1, 0.9, 0.3, 0.3)
    x = t64(-150, -50, 25, 120, 300).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: piecewise_linear(v, xs, ys), (x,))
    piecewise_linear(x, xs, ys).sum().backward()
    # slopes: 0 outside, 0.8 / 100 on [-100, 0], -0.6 / 50 on [0, 50], 0 on [50, 200]
    torch.testing.assert_close(x.grad, t64(0, 0.008, -0.012, 0, 0), rtol=0, atol=1e-12)


def test_matches_vtk_if_available():
    vtk = pytest.importorskip("vtk", reason="vtk is not installed (optional cross-check)")
    gen = torch.Generator().manual_seed(0)
    for preset in bundled_presets().values():
        opacity = vtk.vtkPiecewiseFunction()
        for x, a in preset.scalar_opacity:
            opacity.AddPoint(x, a)
        color = vtk.vtkColorTransferFunction()
        color.SetColorSpaceToRGB()
        for x, r, g, b in preset.color:
            color.AddRGBPoint(x, r, g, b)
        low, high = preset.scalar_opacity[0][0], preset.scalar_opacity[-1][0]
        hu = low - 100 + (high - low + 200) * torch.rand(500, dtype=torch.float64, generator=gen)
        want_a = t64(*(opacity.GetValue(float(v)) for v in hu))
        want_rgb = torch.tensor([color.GetColor(float(v)) for v in hu], dtype=torch.float64)
        torch.testing.assert_close(preset.opacity(hu), want_a, rtol=0, atol=1e-6)
        torch.testing.assert_close(preset.rgb(hu), want_rgb, rtol=0, atol=1e-6)


# --- dtypes, devices, shading --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_shapes(dtype):
    bone = load_preset("CT-Bone")
    hu = torch.linspace(-1000, 2000, 24, dtype=dtype).reshape(2, 3, 4)
    assert bone.opacity(hu).dtype == dtype and bone.opacity(hu).shape == (2, 3, 4)
    assert bone.gradient_factor(hu.abs()).shape == (2, 3, 4)
    rgb = bone.rgb(hu)
    assert rgb.dtype == dtype and rgb.shape == (2, 3, 4, 3)
    assert bool(((rgb >= 0) & (rgb <= 1)).all())
    ref = bone.rgb(hu.double())
    torch.testing.assert_close(rgb.double(), ref, rtol=0, atol=1e-5)


def test_integer_hu_gives_float32():
    bone = load_preset("CT-Bone")
    hu = torch.tensor([-16, 641, 312], dtype=torch.int16)
    got = bone.opacity(hu)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, bone.opacity(hu.float()))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    bone = load_preset("CT-Bone")
    hu = torch.linspace(-3000, 3000, 10_000)
    got = bone.rgb(hu.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), bone.rgb(hu))


def test_shading():
    bone = load_preset("CT-Bone")  # ambient 0.1, diffuse 0.9, specular 0.2, power 10
    c = t64(0, 1, -1, 0.5)
    # 0 -> ambient 0.1; +-1 -> 0.1 + 0.9 + 0.2 = 1.2; 0.5 -> 0.1 + 0.45 + 0.2 * 0.5 ** 10
    torch.testing.assert_close(bone.shading(c), t64(0.1, 1.2, 1.2, 0.55 + 0.2 / 1024),
                               rtol=0, atol=1e-12)
    flat = load_preset("CT-Coronary-Arteries")  # shade="0"
    assert not flat.shade
    assert torch.equal(flat.shading(torch.rand(5, 7)), torch.ones(5, 7))


# --- JSON and the bundled presets ----------------------------------------------------------------

def test_json_round_trip(slicer_xml, tmp_path):
    presets = parse_slicer_presets(slicer_xml)
    write_presets_json(presets, tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert data["source"] == CREDIT
    back = [Preset.from_dict(d) for d in data["presets"]]
    assert [p.name for p in back] == list(presets)
    assert back == list(presets.values())


def test_bundled_json_is_in_sync_with_slicer_xml(slicer_xml, tmp_path):
    presets = parse_slicer_presets(slicer_xml)
    assert bundled_presets() == presets
    assert preset_names() == list(presets)
    write_presets_json(presets, tmp_path / "presets.json")
    bundled = resource_path("presets", "presets.json").read_text(encoding="utf-8")
    assert bundled == (tmp_path / "presets.json").read_text(encoding="utf-8")
    assert '"source": "Control points from 3D Slicer' in bundled


def test_bundled_presets_returns_a_copy():
    first = bundled_presets()
    first.clear()
    assert len(bundled_presets()) == 31


def test_from_dict_rejects_bad_keys():
    d = load_preset("CT-Bone").to_dict()
    d["specularPower"] = d.pop("specular_power")
    with pytest.raises(PresetError, match="specular_power"):
        Preset.from_dict(d)


# --- load_preset ---------------------------------------------------------------------------------

def test_load_preset_by_name():
    assert load_preset("CT-Bone").name == "CT-Bone"
    assert load_preset("ct-bone").name == "CT-Bone"
    assert load_preset("CT-BONES").name == "CT-Bones"


def test_unknown_preset_suggests_close_names():
    with pytest.raises(PresetError) as info:
        load_preset("CT-Boen")
    message = str(info.value)
    assert message.startswith("unknown preset 'CT-Boen'")
    assert "did you mean 'CT-Bone'" in message
    assert "CT-Chest-Contrast-Enhanced" in message and "renderfm presets" in message


def test_load_preset_from_json_and_xml_files(tmp_path):
    bone = load_preset("CT-Bone")
    single = tmp_path / "mine.json"
    write_presets_json({"CT-Bone": bone}, single)
    assert load_preset(single) == bone
    assert load_preset(str(single)) == bone
    (tmp_path / "one.json").write_text(json.dumps(bone.to_dict()))
    assert load_preset(tmp_path / "one.json") == bone
    xml = tmp_path / "one.xml"
    xml.write_text(_xml_with())
    assert load_preset(xml).name == "Mine"


def test_xml_with_several_presets_needs_a_choice(slicer_xml):
    with pytest.raises(PresetError, match="exactly one preset.*CT-AAA, CT-AAA2"):
        load_preset(slicer_xml)


def test_missing_file(tmp_path):
    with pytest.raises(PresetError, match="cannot read"):
        load_preset(tmp_path / "nope.xml")


def _xml_with(**attrs: str) -> str:
    """A one-preset Slicer XML, with some attributes replaced (value None drops one)."""
    values = {"name": "Mine", "scalarOpacity": "4 0 0 100 1", "gradientOpacity": "4 0 1 255 1",
              "colorTransfer": "8 0 0 0 0 100 1 1 1", "shade": "1", "ambient": "0.1",
              "diffuse": "0.9", "specular": "0.2", "specularPower": "10"}
    values.update(attrs)
    text = " ".join(f'{k}="{v}"' for k, v in values.items() if v is not None)
    return f"<MRML><VolumeProperty {text}/></MRML>"


@pytest.mark.parametrize("attr, value, match", [
    ("scalarOpacity", "5 0 0 100 1", "scalarOpacity announces 5 values but holds 4"),
    ("scalarOpacity", "4 0 0 1OO 1", "scalarOpacity is not a list of numbers"),
    ("colorTransfer", "6 0 0 0 0 1 1", "colorTransfer holds 6 values, not a multiple of 4"),
    ("gradientOpacity", "4 255 1 0 1", r"gradient_opacity \(gradientOpacity\).*non-decreasing"),
    ("scalarOpacity", "4 0 0 100 1.5", r"scalar_opacity \(scalarOpacity\).*\[0, 1\]"),
    ("colorTransfer", "8 0 0 0 0 100 1 -0.1 1", r"color \(colorTransfer\).*\[0, 1\]"),
    ("specularPower", "ten", "specularPower is not a list of numbers"),
    ("ambient", "2", r"ambient \(ambient\) must be a number in \[0, 1\]"),
    ("diffuse", None, "lacks the attribute diffuse"),
])
def test_malformed_xml_names_preset_and_attribute(tmp_path, attr, value, match):
    path = tmp_path / "bad.xml"
    path.write_text(_xml_with(**{attr: value}))
    with pytest.raises(PresetError, match=match) as info:
        parse_slicer_presets(path)
    assert "'Mine'" in str(info.value)
