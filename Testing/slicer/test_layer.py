"""ImageLayer: an RGBA image on a new top layer of a VTK render window, composited exactly.

A plain offscreen VTK window (EGL) with a lit, shaded sphere on a coloured background stands for
Slicer's native 3D view here (test_overlay.py runs the layer in a real Slicer view): every test
compares read-back pixels with the native-only image of the same window.
"""

import numpy as np
import pytest

pytest.importorskip("slicer")  # EGL offscreen windows: Testing/slicer/conftest.py

from RenderFMLib.slicer.layer import ImageLayer
from RenderFMLib.slicer.view import read_pixels  # noqa: E402

WIDTH, HEIGHT = 160, 120  # not square, so a swapped axis shows


@pytest.fixture
def window():
    """An offscreen window showing a sphere over a blue-grey background, on 3 layers like a
    Slicer 3D view (layers 1 and 2 empty)."""
    import vtk

    render_window = vtk.vtkRenderWindow()
    render_window.SetOffScreenRendering(1)
    render_window.SetMultiSamples(0)
    render_window.SetSize(WIDTH, HEIGHT)
    render_window.SetNumberOfLayers(3)
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.2, 0.3, 0.4)
    sphere = vtk.vtkSphereSource()
    sphere.SetThetaResolution(48)
    sphere.SetPhiResolution(48)
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputConnection(sphere.GetOutputPort())
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    renderer.AddViewProp(actor)
    renderer.ResetCamera()
    render_window.AddRenderer(renderer)
    yield render_window
    render_window.Finalize()


def capture(render_window) -> np.ndarray:
    render_window.Render()
    return read_pixels(render_window)


def test_layer_is_a_new_non_interactive_top_layer_and_never_lowers_the_count(window):
    native = capture(window)
    assert len(np.unique(native.reshape(-1, 3), axis=0)) > 10  # the sphere is shaded
    first = ImageLayer(window)
    second = ImageLayer(window)
    assert window.GetNumberOfLayers() == 5
    assert (first.renderer.GetLayer(), second.renderer.GetLayer()) == (3, 4)
    assert not first.renderer.GetInteractive()
    first.remove()
    first.remove()  # idempotent
    second.remove()
    assert window.GetNumberOfLayers() == 5  # VTK would stop drawing renderers above a lowered count
    assert np.array_equal(capture(window), native)
    for _ in range(3):  # show, hide, show again...: the free top layer is taken, not a new one
        again = ImageLayer(window)
        assert again.renderer.GetLayer() == 4 and window.GetNumberOfLayers() == 5
        again.remove()
    assert np.array_equal(capture(window), native)


def test_the_first_layer_above_slicers_is_reused_once_free(window):
    for _ in range(3):  # show, hide, show again...: layer 3, just above Slicer's 0, 1 and 2
        layer = ImageLayer(window)
        assert layer.renderer.GetLayer() == 3 and window.GetNumberOfLayers() == 4
        layer.remove()


def test_compositing_is_exact_and_transparent_pixels_are_untouched(window):
    native = capture(window).astype(np.float64)
    image = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    image[10:40, 20:60] = (255, 0, 0, 153)  # 60 % red, over background and sphere
    image[50:80, 70:110] = (0, 255, 255, 255)
    image[0, 0] = (0, 255, 0, 255)  # top-left: rows are flipped for VTK
    layer = ImageLayer(window)
    layer.set_image(image)
    out = capture(window).astype(np.float64)
    transparent = image[..., 3] == 0
    assert transparent.sum() > 0.8 * transparent.size
    assert np.array_equal(out[transparent], native[transparent])
    expected = 0.6 * np.array([255.0, 0.0, 0.0]) + 0.4 * native[10:40, 20:60]
    assert np.abs(out[10:40, 20:60] - expected).max() <= 1.0  # 8-bit rounding of the blend
    assert np.array_equal(out[50:80, 70:110], np.broadcast_to([0, 255, 255], (30, 40, 3)))
    assert np.array_equal(out[0, 0], [0, 255, 0])
    assert np.array_equal(out[HEIGHT - 1, 0], native[HEIGHT - 1, 0])


def test_float_image_matches_the_uint8_one(window):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    layer = ImageLayer(window)
    layer.set_image(image)
    as_bytes = capture(window)
    layer.set_image(image / 255.0)
    assert np.array_equal(capture(window), as_bytes)


def test_smaller_draft_image_is_stretched_over_the_whole_viewport(window):
    layer = ImageLayer(window)
    draft = np.zeros((HEIGHT // 2, WIDTH // 2, 4), np.uint8)
    draft[...] = (0, 0, 255, 255)
    draft[:, : WIDTH // 4] = (255, 255, 0, 255)  # left half yellow
    layer.set_image(draft)
    out = capture(window)
    # Linear upscaling blends the two colours only at the seam, one draft pixel (2 px) wide.
    assert np.array_equal(out[:, : WIDTH // 2 - 2], np.broadcast_to([255, 255, 0], (HEIGHT, 78, 3)))
    assert np.array_equal(out[:, WIDTH // 2 + 2:], np.broadcast_to([0, 0, 255], (HEIGHT, 78, 3)))


def test_one_pixel_image_covers_the_whole_viewport(window):
    layer = ImageLayer(window)
    layer.set_image(np.array([[[0, 255, 0, 255]]], np.uint8))
    out = capture(window)
    assert np.array_equal(out, np.broadcast_to([0, 255, 0], out.shape))


def test_layer_refits_when_the_window_is_resized(window):
    layer = ImageLayer(window)
    opaque = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    opaque[...] = (0, 0, 255, 255)
    layer.set_image(opaque)
    window.SetSize(200, 90)
    out = capture(window)
    assert out.shape == (90, 200, 3)
    assert np.array_equal(out, np.broadcast_to([0, 0, 255], out.shape))


def test_hidden_layer_and_removed_layer_leave_the_native_image(window):
    native = capture(window)
    layer = ImageLayer(window)
    layer.set_image(np.full((HEIGHT, WIDTH, 4), 200, np.uint8))
    assert not np.array_equal(capture(window), native)
    layer.visible = False
    assert not layer.visible
    assert np.array_equal(capture(window), native)
    layer.visible = True
    layer.remove()
    assert np.array_equal(capture(window), native)


def test_layer_without_an_image_draws_nothing(window):
    native = capture(window)
    ImageLayer(window)
    assert np.array_equal(capture(window), native)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32),
                                 np.zeros((0, 4, 4), np.uint8), np.zeros((4, 0, 4), np.uint8),
                                 np.zeros((4, 4, 4), np.int32)])
def test_wrong_image_shapes_or_types_are_refused(window, bad):
    with pytest.raises(ValueError, match="RGBA|uint8"):
        ImageLayer(window).set_image(bad)
