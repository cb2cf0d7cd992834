"""Edge detection: filters and maps (convcli.images.gradients) against scipy, OpenCV and a naive
reference; the files convcli.images.edges writes."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.errors import InputError, OutputError
from convcli.images.edges import EdgeOptions, detect_edges, legend_box, orientation_colours, plan_outputs
from convcli.images.gradients import (
    display_reference,
    edge_filter,
    edge_maps,
    orientation_degrees,
)
from convcli.images.kernels import KERNELS

import reference
from conftest import SAMPLES, grey_png


def step_image():
    """8x8: bright (200) on the left half, dark (0) on the right."""
    return np.repeat([[200] * 4 + [0] * 4], 8, axis=0)


# Filters by name.


@pytest.mark.parametrize(
    "name, x, y, shown",
    [
        ("sobel", "sobel-x", "sobel-y", "sobel"),
        ("sobel-x", "sobel-x", "sobel-y", "sobel"),
        ("Scharr-Y", "scharr-x", "scharr-y", "scharr"),
        ("roberts", "roberts-x", "roberts-y", "roberts"),
        ("horizontal", "vertical", "horizontal", "vertical/horizontal"),
        ("laplacian", "laplacian", None, "laplacian"),
    ],
)
def test_filter_names(name, x, y, shown):
    f = edge_filter(name)
    assert (f.x.name, f.y.name if f.y else None, f.name) == (x, y, shown)


def test_a_smoothing_kernel_is_not_an_edge_filter():
    with pytest.raises(InputError, match="'gaussian' is a smooth kernel.*convcli conv --kernel gaussian"):
        edge_filter("gaussian")


def test_unknown_filter_suggests_names():
    with pytest.raises(InputError, match="--filter: kernel .sobelx. is not known \\(did you mean .sobel-x."):
        edge_filter("sobelx")


# Maps.


@pytest.mark.parametrize("name", ["sobel", "scharr", "prewitt"])
@pytest.mark.parametrize("components", [False, True])
def test_magnitude_matches_scipy(name, components):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = np.random.default_rng(1).random((2, 23, 31))
    f = edge_filter(name)
    maps = edge_maps(image, f, "reflect", components)
    # scipy's correlate with mode "mirror" is our "reflect" (OpenCV's BORDER_REFLECT_101)
    gx = np.stack([ndimage.correlate(p, f.x.array(), mode="mirror") for p in image])
    gy = np.stack([ndimage.correlate(p, f.y.array(), mode="mirror") for p in image])
    np.testing.assert_allclose(maps.magnitude, np.hypot(gx, gy), atol=1e-10)
    if components:
        np.testing.assert_allclose(maps.gx, gx, atol=1e-10)
        np.testing.assert_allclose(maps.gy, gy, atol=1e-10)


@pytest.mark.parametrize("mode", ["zeros", "replicate", "symmetric"])
def test_single_kernel_is_the_absolute_response(mode):
    image = np.random.default_rng(2).random((1, 7, 9))
    pads = (1, 1, 1, 1)
    want = reference.conv2d(image[None], KERNELS["laplacian"].array()[None, None], pads=pads, mode=mode)[0]
    np.testing.assert_allclose(edge_maps(image, edge_filter("laplacian"), mode).magnitude, np.abs(want), atol=1e-12)


def test_step_edge_gives_a_line_exactly_at_the_step():
    maps = edge_maps(step_image()[None].astype(np.float64), edge_filter("vertical"), "replicate", True)
    # the course filter: bright-to-dark from left to right is positive, 3 * 200 on the two columns
    np.testing.assert_array_equal(maps.gx[0], np.repeat([[0, 0, 0, 600, 600, 0, 0, 0]], 8, axis=0))
    np.testing.assert_array_equal(maps.gy[0], 0)


def test_zeros_in_zeros_out():
    maps = edge_maps(np.zeros((1, 5, 5)), edge_filter("sobel"))
    assert not maps.magnitude.any() and display_reference(maps.magnitude) is None


def test_orientation_points_where_brightness_rises():
    ramp = np.arange(9.0)
    cases = {
        0: ramp[None, :].repeat(9, 0),
        180: ramp[::-1][None, :].repeat(9, 0),
        90: ramp[::-1][:, None].repeat(9, 1),
        -90: ramp[:, None].repeat(9, 1),
    }
    for angle, image in cases.items():
        maps = edge_maps(image[None], edge_filter("sobel"), "replicate", True)
        np.testing.assert_allclose(orientation_degrees(maps.gx, maps.gy)[0, 4, 4], angle)


def test_display_reference_is_the_995th_percentile():
    assert display_reference(np.arange(1001.0)) == pytest.approx(995.0)
    sparse = np.zeros(10_000)
    sparse[:3] = [1.0, 2.0, 4.0]  # fewer edges than 0.5%: the maximum is used
    assert display_reference(sparse) == 4.0


@pytest.mark.parametrize("n", [1, 2, 199, 1000, 250_001, 3_000_000])
def test_display_reference_is_numpys_percentile_exactly(n, monkeypatch):

    monkeypatch.setenv("CONVCLI_THREADS", "3")  # bands on threads, even on one core
    rng = np.random.default_rng(n)
    values = rng.exponential(size=n).astype(np.float32)
    values[rng.random(n) < 0.3] = 0  # flat areas: ties at zero
    expected = np.percentile(values, 99.5)
    assert display_reference(values.reshape(1, 1, n)) == pytest.approx(expected, rel=1e-6) or expected == 0


def test_display_reference_holds_when_the_sample_misleads():
    # the sampled values are the brightest, and distinct: 1% of the sample is 0.05% of the whole,
    # so fewer values reach the sample's 99th percentile than the 99.5th of the whole needs
    n = 2_000_000
    values = np.arange(n, dtype=np.float64) % 997
    sampled = values[:: n // 100_000]
    sampled[:] = 1e6 + np.arange(sampled.size)
    assert display_reference(values) == pytest.approx(np.percentile(values, 99.5), rel=1e-12)


# Files.


def test_default_output_is_written_next_to_the_input(tmp_path):
    src = grey_png(tmp_path / "step.png", step_image())
    [result] = detect_edges([src])
    assert result.error is None and result.outputs == (tmp_path / "step_edges.png",)
    written = np.asarray(Image.open(result.outputs[0]))
    assert written.dtype == np.uint8 and written[:, 3:5].min() == 255 and written[:, [0, 1, 6, 7]].max() == 0
    assert result.shape == (1, 8, 8) and result.low == 0 and result.high == pytest.approx(4 * 200 / 255)


def test_tif_keeps_exact_magnitudes(tmp_path):
    src = grey_png(tmp_path / "noise.png", np.random.default_rng(3).integers(0, 256, (12, 10)))
    [result] = detect_edges([src], output=tmp_path / "out.tif")
    want = edge_maps(np.asarray(Image.open(src), np.float32)[None] / 255, edge_filter("sobel")).magnitude
    np.testing.assert_array_equal(np.asarray(Image.open(result.outputs[0])), want[0])


def test_threshold_gives_a_binary_map(tmp_path):
    src = grey_png(tmp_path / "noise.png", np.random.default_rng(4).integers(0, 256, (16, 16)))
    [result] = detect_edges([src], EdgeOptions(threshold=0.5))
    magnitude = edge_maps(np.asarray(Image.open(src), np.float32)[None] / 255, edge_filter("sobel")).magnitude[0]
    written = np.asarray(Image.open(result.outputs[0]))
    np.testing.assert_array_equal(written, np.where(magnitude >= 0.5 * magnitude.max(), 255, 0))


def test_orientation_and_panel_files(tmp_path):
    src = grey_png(tmp_path / "step.png", step_image())
    [result] = detect_edges([src], EdgeOptions(orientation=True, panel=True))
    assert [p.name for p in result.outputs] == ["step_edges.png", "step_edges_orientation.png", "step_edges_panel.png"]
    hue = np.asarray(Image.open(result.outputs[1]).convert("HSV"))
    # brightness rises to the left: 180 degrees, hue 128 of 256, on the edge columns only
    assert abs(int(hue[4, 3, 0]) - 128) <= 1 and hue[4, 0, 2] == 0
    panel = Image.open(result.outputs[2])
    assert panel.mode == "RGB" and panel.width > 4 * 96


def test_orientation_map_has_a_colour_wheel_in_its_corner(tmp_path):
    yy, xx = np.mgrid[0:160, 0:200]
    image = np.where(np.hypot(yy - 70, xx - 90) < 40, 220, 30)  # a bright disc: edges in every direction
    src = grey_png(tmp_path / "disc.png", image)
    [result] = detect_edges([src], EdgeOptions(orientation=True))
    written = np.asarray(Image.open(result.outputs[1]).convert("RGB")).astype(int)  # H, W, 3
    top, left, high, wide = legend_box(160, 200)
    assert top + high < 160 and left + wide < 200 and high >= 48
    cy, cx, r = top + (high - 1) / 2, left + (wide - 1) / 2, 0.46 * high / 2
    for angle in (0, 45, 90, 180, 270):
        row, col = round(cy - r * np.sin(np.radians(angle))), round(cx + r * np.cos(np.radians(angle)))
        at = np.degrees(np.arctan2(cy - row, col - cx))  # the pixel's own angle
        assert abs((at - angle + 180) % 360 - 180) < 5
        expected = orientation_colours(np.array([[at]]), np.ones((1, 1)))[:, 0, 0] * 255
        np.testing.assert_allclose(written[row, col], expected, atol=2)
    maps = edge_maps(image[None].astype(np.float32) / 255, edge_filter("sobel"), "reflect", components=True)
    plain = orientation_colours(orientation_degrees(maps.gx[0], maps.gy[0]), maps.magnitude[0])
    plain = np.rint(plain.transpose(1, 2, 0) * 255)
    outside = np.ones((160, 200), bool)
    outside[top : top + high, left : left + wide] = False
    np.testing.assert_array_equal(written[outside], plain[outside])
    assert written[~outside].any()


def test_panel_scale_bars_state_the_reference_of_the_signed_tiles(tmp_path, monkeypatch):
    import convcli.images.panel
    from convcli.images.panel import panel
    from convcli.images.tonemap import to_display

    seen = {}

    def spy(tiles, labels, references=None):
        seen.update(tiles=tiles, references=references)
        return panel(tiles, labels, references=references)

    monkeypatch.setattr(convcli.images.panel, "panel", spy)
    src = grey_png(tmp_path / "step.png", step_image())
    detect_edges([src], EdgeOptions(panel=True))
    maps = edge_maps(step_image()[None] / 255, edge_filter("sobel"), "reflect", components=True)
    ref = display_reference(maps.magnitude)
    assert seen["references"] == [None, pytest.approx(ref), pytest.approx(ref), None]
    np.testing.assert_allclose(seen["tiles"][1], to_display(maps.gx, "offset", ref), atol=1e-6)
    np.testing.assert_allclose(seen["tiles"][2], to_display(maps.gy, "offset", ref), atol=1e-6)


def test_exact_orientation_in_degrees(tmp_path):
    src = grey_png(tmp_path / "step.png", step_image())
    [result] = detect_edges([src], EdgeOptions(orientation=True), output=tmp_path / "e.npy")
    angle = np.load(result.outputs[1])
    assert result.outputs[1].name == "e_orientation.npy" and angle[4, 3] == 180


def test_rgb_keeps_an_edge_between_colours_of_equal_brightness(tmp_path):
    red, green = np.array([255, 0, 0]), np.array([0, 130, 0])  # Rec.601 greys 76.2 and 76.3
    pixels = np.concatenate([np.tile(red, (6, 3, 1)), np.tile(green, (6, 3, 1))], axis=1)
    src = tmp_path / "rg.png"
    Image.fromarray(pixels.astype(np.uint8)).save(src)
    [grey] = detect_edges([src], output=tmp_path / "grey.tif")
    [colour] = detect_edges([src], EdgeOptions(channels="rgb"), output=tmp_path / "colour.png")
    assert grey.high < 0.01 and colour.high == pytest.approx(4.0)
    edge = np.asarray(Image.open(colour.outputs[0]))[3, 2]
    assert edge[0] == 255 and edge[1] > 100 and edge[2] == 0


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    good = grey_png(tmp_path / "good.png", step_image())
    (tmp_path / "bad.png").write_text("not an image")
    seen = []
    results = detect_edges([tmp_path / "bad.png", good], on_file=seen.append)
    assert seen == results
    assert "bad.png is not an image" in results[0].error and results[0].outputs == ()
    assert results[1].error is None and (tmp_path / "good_edges.png").exists()
    assert not (tmp_path / "bad_edges.png").exists()


def test_output_plans(tmp_path):
    opts = EdgeOptions(orientation=True, panel=True)
    [one] = plan_outputs(["a/cat.jpg"], None, EdgeOptions())
    assert one.edges == Path("a/cat_edges.png") and one.orientation is None
    [named] = plan_outputs(["cat.jpg"], tmp_path / "x.tif", opts)
    assert (named.edges.name, named.orientation.name, named.panel.name) == ("x.tif", "x_orientation.tif", "x_panel.png")
    several = plan_outputs(["a/cat.jpg", "b/dog.png"], tmp_path / "new", EdgeOptions())
    assert [t.edges for t in several] == [tmp_path / "new/cat_edges.png", tmp_path / "new/dog_edges.png"]
    assert (tmp_path / "new").is_dir()
    with pytest.raises(OutputError, match="a/cat.jpg and b/cat.png would both write"):
        plan_outputs(["a/cat.jpg", "b/cat.png"], tmp_path, EdgeOptions())


@pytest.mark.parametrize(
    "options, match",
    [
        (EdgeOptions(threshold=1.5), "--threshold 1.5"),
        (EdgeOptions(filter="laplacian", orientation=True), "--orientation needs an x/y pair"),
        (EdgeOptions(mode="mirror"), "--mode='mirror' is not a border mode.*did you mean 'reflect'"),
    ],
)
def test_bad_options_fail_before_any_file(tmp_path, options, match):
    with pytest.raises(InputError, match=match):
        detect_edges([tmp_path / "missing.png"], options)


def test_sample_photo_against_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    [result] = detect_edges([SAMPLES / "chelsea.png"], output=tmp_path / "cat.tif")
    grey = cv2.cvtColor(cv2.imread(str(SAMPLES / "chelsea.png")), cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    want = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    # OpenCV rounds the grey to 8 bits; we keep float: agree to a fraction of one grey level
    np.testing.assert_allclose(np.asarray(Image.open(result.outputs[0])), want, atol=8 / 255)
