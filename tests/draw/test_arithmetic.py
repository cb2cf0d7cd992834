"""shape-calc --animate: one frame per output position, filled in order, the windows shape-calc
counts, and a transposed convolution drawn as the stride-1 convolution it equals."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import convcli.draw.files as files
from convcli.draw.arithmetic import CURRENT, DONE, INPUT, MAX_FRAMES, PAD, animate, chosen, frames, track
from convcli.draw.scene import overlapping_texts
from convcli.images.convpool import ConvSettings, convolve
from convcli.shapes import axis

import reference
from conftest import failed, grey_png, run

SETTINGS = [
    dict(n=5, f=3, s=2, padding=1),
    dict(n=7, f=3, s=3),  # the floor drops a row and a column
    dict(n=6, f=2, pool=True),
    dict(n=5, f=2, pool=True, ceil=True),  # the last window hangs over the edge
    dict(n=7, f=3, d=2),
    dict(n=3, f=3, s=2, padding=1, transposed=True, output_padding=1),
    dict(n=6, f=3, s=2, padding="tf"),  # TensorFlow SAME: 0 before, 1 after
    dict(n=4, f=3, padding="full"),
]


def _rgb(colour: str) -> tuple[int, ...]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def _centre(item) -> tuple[float, float]:
    xs, ys = [p[0] for p in item.points], [p[1] for p in item.points]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


@pytest.mark.parametrize("setting", SETTINGS)
def test_one_frame_per_output_position_filled_in_order(setting):
    out = axis(**setting).out
    shown = frames(axis(**setting))
    assert len(shown) == out * out
    for k, frame in enumerate(shown):
        assert frame.position == divmod(k, out) and frame.filled == k + 1
        cells = frame.scene.of_class("output") + frame.scene.of_class("current")
        assert len(cells) == out * out
        [current] = frame.scene.of_class("current")
        assert current.fill == CURRENT
        # row-major: the cells before the current one are filled, the ones after are not
        order = sorted(cells, key=lambda c: (_centre(c)[1], _centre(c)[0]))
        assert [c.fill for c in order] == [DONE] * k + [CURRENT] + ["#ffffff"] * (out * out - k - 1)
        assert overlapping_texts(frame.scene) == []
        for text in frame.scene.texts:
            left, top, right, bottom = text.bbox
            assert left >= 0 and top >= 0 and right <= frame.scene.width and bottom <= frame.scene.height, text


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_window_is_where_the_output_reads(setting):
    stride = 1 if setting.get("transposed") else setting.get("s", setting["f"] if setting.get("pool") else 1)
    f_eff = setting.get("d", 1) * (setting["f"] - 1) + 1
    for frame in frames(axis(**setting)):
        i, j = frame.position
        [window] = frame.scene.of_class("window")
        xs, ys = [p[0] for p in window.points], [p[1] for p in window.points]
        cell = (max(xs) - min(xs)) / f_eff
        grid = frame.scene.of_class(INPUT) + frame.scene.of_class(PAD) + frame.scene.of_class("dropped")
        x0, y0 = min(min(p[0] for p in c.points) for c in grid), min(min(p[1] for p in c.points) for c in grid)
        assert (round((min(ys) - y0) / cell), round((min(xs) - x0) / cell)) == (i * stride, j * stride)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 7),
    st.integers(1, 5),
    st.integers(0, 3),
    st.integers(1, 3),
    st.booleans(),
)
def test_the_windows_leave_exactly_what_shape_calc_says_is_dropped(n, f, s, p, d, pool):
    if pool and (2 * p > f or d > 1):
        return
    try:
        result = axis(n, f, s, p, d, pool=pool)
        t = track(result)
    except Exception as err:  # sizes shape-calc refuses are refused here too
        assert type(err).__name__ == "ShapeError"
        return
    covered = {pos for i in range(t.out) for pos in t.taps(i)}
    assert max(covered) == len(t.cells) - 1 - result.dropped
    assert max(t.taps(t.out)) > len(t.cells) - 1  # one more window would not fit


def _transposed_by_scatter(x, w, s, p, d, op):
    """The definition: every input value times every kernel tap, added where it lands."""
    n, f = len(x), len(w)
    out = [0.0] * ((n - 1) * s - 2 * p + d * (f - 1) + op + 1)
    for i, xi in enumerate(x):
        for k, wk in enumerate(w):
            j = i * s + k * d - p
            if 0 <= j < len(out):
                out[j] += xi * wk
    return out


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(0, 4), st.integers(1, 2), st.data())
def test_a_transposed_convolution_is_the_stride_1_convolution_drawn(n, f, s, p, d, data):
    op = data.draw(st.integers(0, max(s, d) - 1))
    if p > d * (f - 1):  # the drawing crops the spread input; the order of inputs below assumes none is cut
        return
    try:
        result = axis(n, f, s, p, d, transposed=True, output_padding=op)
        t = track(result)
    except Exception as err:
        assert type(err).__name__ == "ShapeError"
        return
    rng = random.Random(n * 1000 + f * 100 + s * 10 + p)
    x, w = [rng.randint(-5, 5) for _ in range(n)], [rng.randint(-5, 5) for _ in range(f)]
    values = iter(x)
    grid = [next(values) if cell == INPUT else 0 for cell in t.cells]
    direct = [sum(grid[j + k * d] * w[f - 1 - k] for k in range(f)) for j in range(result.out)]
    assert t.out == result.out and len(grid) - d * (f - 1) == result.out
    assert direct == _transposed_by_scatter(x, w, s, p, d, op)


def test_frames_caps_a_large_animation_from_first_to_last():
    shown = frames(axis(30, 3), cap=5)
    assert [f.position for f in shown] == [(0, 0), (7, 0), (14, 0), (20, 27), (27, 27)]  # 783 * k / 4, rounded
    assert [f.filled for f in shown] == [1, 197, 393, 588, 784]
    assert chosen(10, 20) == list(range(10))
    with pytest.raises(Exception, match="give --frames N"):
        frames(axis(30, 3))
    with pytest.raises(Exception, match="at least 1"):
        chosen(10, 0)
    with pytest.raises(Exception, match=f"more than {MAX_FRAMES}"):
        chosen(10_000, MAX_FRAMES + 1)


def test_the_gif_shows_the_kth_output_filled_in_frame_k(tmp_path):
    shown, path = animate(tmp_path / "conv.gif", axis(5, 3, 2, 1))
    gif = Image.open(path)
    assert gif.n_frames == len(shown) == 9
    for frame in shown:
        gif.seek(frame.k)
        rgb = gif.convert("RGB")
        for cell in frame.scene.of_class("output") + frame.scene.of_class("current"):
            x, y = _centre(cell)
            got = rgb.getpixel((int(x * 1.5), int(y * 1.5)))
            assert max(abs(a - b) for a, b in zip(got, _rgb(cell.fill))) <= 12, (frame.k, cell.fill, got)


def test_the_png_is_a_sheet_of_every_frame(tmp_path):
    shown, path = animate(tmp_path / "sheet.png", axis(7, 3, 3))
    sheet = Image.open(path)
    w, h = round(shown[0].scene.width), round(shown[0].scene.height)
    assert len(shown) == 4  # 2 x 2 outputs: frames in a 2 x 2 sheet
    assert abs(sheet.width - (2 * w + 3 * 8)) <= 2 and abs(sheet.height - (2 * h + 3 * 8)) <= 2


def test_shape_calc_animates_and_still_prints_the_number(tmp_path):
    out = tmp_path / "a.gif"
    result = run("shape-calc", "-n", "5", "-f", "3", "-s", "2", "-p", "1", "--animate", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "3\n" and result.stderr == f"wrote {out} (9 frames)\n"
    result = run("shape-calc", "-n", "40", "-f", "3", "--frames", "6", "--animate", tmp_path / "b.png")
    assert result.exit_code == 0 and "(6 frames)" in result.stderr
    result = run("shape-calc", "-n", "4", "-f", "2", "-s", "2", "--transposed", "--animate", out, "--json")
    assert result.exit_code == 0 and '"output": 8' in result.stdout


def test_shape_calc_animate_mistakes(tmp_path):
    out = tmp_path / "a.gif"
    assert failed(run("shape-calc", "-n", "5", "-f", "3", "--animate", tmp_path / "a.mp4"), ".gif or .png", ".mp4")
    assert failed(run("shape-calc", "-n", "100", "-f", "3", "--animate", out), "9,604 positions", "--frames")
    assert failed(run("shape-calc", "-n", "5", "-f", "3", "--frames", "0", "--animate", out), "--frames 0")
    assert failed(run("shape-calc", "-n", "2", "-f", "3", "--animate", out), "larger than the padded input")
    assert not out.exists()
    for args in (["28x28x1", "conv:6,f=5", "--animate", out], ["-n", "5", "-f", "3", "--frames", "3"]):
        result = run("shape-calc", *args)
        assert result.exit_code == 2 and result.stderr.startswith("Error: ") and "--" in result.stderr


# conv MATRIX --animate: the same frames with the numbers of a typed matrix.

COURSE = ";".join(["10,10,10,0,0,0"] * 6)  # the course's 6x6 vertical-edge example


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(padding=1, stride=2),
        dict(padding=2, dilation=2, mode="reflect"),
        dict(padding=1, flip=True),
    ],
)
def test_conv_animate_writes_the_ops_result_into_frame_ks_cell(tmp_path, monkeypatch, options):
    kernel = "1,2,0;0,1,-1;3,0,-2"
    scenes = []
    write = files.write_animation
    monkeypatch.setattr(
        files, "write_animation", lambda path, shown, *a: scenes.extend(shown) or write(path, shown, *a)
    )
    settings = ConvSettings(animate=str(tmp_path / "conv.gif"), **options)
    result = convolve(COURSE, [kernel], settings)
    x = np.array([[10.0] * 3 + [0.0] * 3] * 6)
    k = np.array([[1.0, 2, 0], [0, 1, -1], [3, 0, -2]])
    p, s, d = options.get("padding", 0), options.get("stride", 1), options.get("dilation", 1)
    expected = reference.conv2d(
        x[None, None],
        k[None, None],
        stride=(s, s),
        pads=(p,) * 4,
        dilation=(d, d),
        mode=options.get("mode", "zeros"),
        flip=options.get("flip", False),
    )[0, 0]
    np.testing.assert_array_equal(result.output[0], expected)
    oh, ow = expected.shape
    assert len(scenes) == oh * ow == Image.open(tmp_path / "conv.gif").n_frames
    for index, scene in enumerate(scenes):
        i, j = divmod(index, ow)
        [written] = [t.text for t in scene.items if getattr(t, "cls", "") == "current-value"]
        [line] = [t.text for t in scene.items if getattr(t, "cls", "") == "sum"]
        terms, total = line.split(" = ")
        products = [
            float(a.strip("()")) * float(b.strip("()")) for a, b in (term.split("x") for term in terms.split(" + "))
        ]
        assert float(written) == float(total) == expected[i, j] == sum(products)
        assert len(products) == 9


def test_conv_animate_mistakes(tmp_path):
    gif = tmp_path / "conv.gif"
    assert failed(run("conv", COURSE, "-k", "vertical", "-k", "horizontal", "--animate", gif), "one kernel", "2")
    assert failed(run("conv", "1,2;3,4|5,6;7,8", "-k", "1,0;0,1", "--animate", gif), "single-channel")
    assert failed(run("conv", "1,2,3;4,5,6", "-k", "1,0;0,1", "--animate", gif), "square", "2 x 3")
    assert failed(run("conv", COURSE, "-k", "vertical", "--animate", tmp_path / "conv.svg"), "--animate", ".gif")
    image = grey_png(tmp_path / "photo.png", [[0, 255, 0]] * 3)
    assert failed(run("conv", image, "-k", "vertical", "--animate", gif), "not an image")
    assert not gif.exists()


def test_conv_animate_prints_the_matrix_too(tmp_path):
    result = run("conv", COURSE, "-k", "vertical", "--animate", tmp_path / "conv.gif")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split()[:4] == ["0", "30", "30", "0"]
    assert Image.open(tmp_path / "conv.gif").n_frames == 16


def test_conv_animate_of_a_large_matrix_takes_frames(tmp_path):
    matrix = ";".join([",".join(["1"] * 23)] * 23)  # 21 x 21 = 441 outputs: more than MAX_FRAMES
    assert failed(run("conv", matrix, "-k", "vertical", "--animate", tmp_path / "a.gif"), "--frames N")
    result = run("conv", matrix, "-k", "vertical", "--animate", tmp_path / "a.gif", "--frames", 5)
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "a.gif").n_frames == 5
    alone = run("conv", matrix, "-k", "vertical", "--frames", 5)
    assert alone.exit_code == 2 and "--frames goes with --animate" in alone.stderr
