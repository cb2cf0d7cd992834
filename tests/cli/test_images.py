"""edges, conv and pool through the CLI: golden matrices, sizes as shape-calc, files, bad input."""

import io
import json
import re
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.images.kernels import KERNELS
from convcli.shapes import conv_axis, pool_axis

import reference
from conftest import SAMPLES, failed, grey_png, run

VERTICAL_EDGE = ";".join(["10,10,10,0,0,0"] * 6)
POOL_4X4 = "1,3,2,1;2,9,1,1;1,3,2,3;5,6,1,2"


@pytest.fixture
def cat(tmp_path):
    return Path(shutil.copy(SAMPLES / "chelsea.png", tmp_path / "chelsea.png"))


# Golden examples from the course.


def test_course_vertical_edge():
    result = run("conv", VERTICAL_EDGE, "--kernel", "vertical")
    assert result.exit_code == 0
    assert result.stdout == " 0  30  30   0\n" * 4  # integers stay integers
    assert "conv: 6 x 6 -> 4 x 4 (window 3 x 3" in result.stderr
    data = json.loads(run("conv", VERTICAL_EDGE, "--kernel", "vertical", "--json").stdout)
    assert data == {"output": [[0, 30, 30, 0]] * 4, "shape": [4, 4]}


def test_course_max_and_average_pooling():
    assert json.loads(run("pool", POOL_4X4, "--size", "2", "--json").stdout) == {
        "output": [[9, 2], [6, 3]],
        "shape": [2, 2],
    }
    assert json.loads(run("pool", POOL_4X4, "--size", "2", "--mode", "avg", "--json").stdout) == {
        "output": [[3.75, 1.25], [3.75, 2.0]],
        "shape": [2, 2],
    }
    assert run("pool", POOL_4X4, "--size", "2").stdout == "9  2\n6  3\n"


def test_matrix_from_stdin_and_files(tmp_path):
    want = run("conv", "3,0,1;1,5,8;2,7,2", "--kernel", "1,0;0,-1").stdout
    assert want == "-2  -8\n-6   3\n"
    assert run("conv", "-", "--kernel", "1,0;0,-1", stdin="3 0 1\n1 5 8\n2 7 2\n").stdout == want
    np.save(tmp_path / "m.npy", np.array([[3, 0, 1], [1, 5, 8], [2, 7, 2]]))
    (tmp_path / "k.csv").write_text("1,0\n0,-1\n")
    assert run("conv", tmp_path / "m.npy", "--kernel", tmp_path / "k.csv").stdout == want


def test_a_stack_of_kernels_gives_channels():
    data = json.loads(run("conv", VERTICAL_EDGE, "-k", "vertical", "-k", "horizontal", "--json").stdout)
    assert data["shape"] == [2, 4, 4]
    assert data["output"][0] == [[0, 30, 30, 0]] * 4 and data["output"][1] == [[0] * 4] * 4


def test_kernel_with_channels_sums_them():
    data = json.loads(run("conv", "1,2;3,4|10,20;30,40", "-k", "1|1", "--json").stdout)
    assert data == {"output": [[[11, 22], [33, 44]]], "shape": [1, 2, 2]}  # C_in = 2 -> C_out = 1


@pytest.mark.parametrize(
    "stride, dilation, padding, mode, flip",
    [
        (1, 1, 1, "zeros", False),
        (2, 1, 0, "zeros", False),
        (1, 2, 2, "reflect", False),
        (2, 1, 1, "replicate", True),
        (1, 1, 2, "circular", False),
    ],
)
def test_conv_matches_the_naive_reference(stride, dilation, padding, mode, flip):
    x = np.random.default_rng(0).normal(size=(7, 8))
    k = np.array([[1, 2, 0], [-1, 0.5, 3]])
    typed = ";".join(",".join(repr(float(v)) for v in row) for row in x)
    data = json.loads(
        run(
            "conv",
            typed,
            "-k",
            "1,2,0;-1,0.5,3",
            "--stride",
            stride,
            "--dilation",
            dilation,
            "--padding",
            padding,
            "--mode",
            mode,
            *(["--flip"] if flip else []),
            "--json",
        ).stdout
    )
    want = reference.conv2d(
        x[None, None],
        k[None, None],
        stride=(stride,) * 2,
        pads=(padding,) * 4,
        dilation=(dilation,) * 2,
        mode=mode,
        flip=flip,
    )[0, 0]
    np.testing.assert_allclose(data["output"], want, atol=1e-9)


def test_flip_is_scipy_convolution():
    signal = pytest.importorskip("scipy.signal")
    x = np.arange(20).reshape(4, 5) % 7
    typed = ";".join(",".join(map(str, row)) for row in x)
    data = json.loads(run("conv", typed, "-k", "1,2;3,-4", "--flip", "--padding", "full", "--json").stdout)
    np.testing.assert_array_equal(data["output"], signal.convolve2d(x, [[1, 2], [3, -4]]))


# Output sizes agree with shape-calc.


@pytest.mark.parametrize(
    "n, f, s, p, d",
    [
        (7, 3, 2, "0", 1),
        (7, 3, 2, "1", 1),
        (9, 3, 1, "same", 1),
        (6, 2, 1, "same", 1),
        (5, 3, 1, "full", 1),
        (10, 3, 1, "0", 2),
        (11, 3, 2, "tf", 1),
        (224, 11, 4, "2", 1),
    ],
)
def test_conv_size_is_shape_calc_size(n, f, s, p, d):
    typed = ";".join([",".join(["1"] * n)] * 3)
    kernel = ";".join([",".join(["1"] * f)])
    result = run("conv", typed, "-k", kernel, "--stride", s, "--padding", p, "--dilation", d, "--json")
    width = json.loads(result.stdout)["shape"][-1]
    padding = int(p) if p.isdigit() else p
    assert width == conv_axis(n, f, s, padding, d).out
    assert f"-> {json.loads(result.stdout)['shape'][0]} x {width}" in result.stderr
    calc = run(
        "shape-calc", "-n", n, "-f", f, "-s", s, "-p", p, "-d", d, *(["--convention", "tf"] if p == "tf" else [])
    )
    expected = calc.stdout.strip() if p != "tf" else str(-(-n // s))
    assert str(width) == expected


@pytest.mark.parametrize(
    "n, f, s, p, ceil", [(5, 2, 2, 0, True), (5, 2, 2, 0, False), (7, 3, 2, 1, True), (6, 3, 1, 1, False)]
)
def test_pool_size_is_shape_calc_size(n, f, s, p, ceil):
    typed = ";".join([",".join(map(str, range(n)))] * n)
    flags = ["--ceil"] if ceil else []
    data = json.loads(run("pool", typed, "--size", f, "--stride", s, "--padding", p, *flags, "--json").stdout)
    assert data["shape"] == [pool_axis(n, f, s, p, ceil=ceil).out] * 2
    calc = run("shape-calc", "-n", n, "-f", f, "-s", s, "-p", p, "--pool", *flags)
    assert calc.stdout.strip() == str(data["shape"][0])
    want = reference.pool2d(np.array([list(range(n))] * n, float)[None, None], (f, f), (s, s), (p,) * 4, ceil=ceil)[
        0, 0
    ]
    np.testing.assert_array_equal(data["output"], want)


def test_uncovered_rows_are_warned_about():
    result = run("pool", ";".join(["1,2,3,4,5"] * 5), "--size", "2")
    assert "warning: 1 row(s) at the bottom and 1 column(s) at the right covered by no window" in result.stderr


def test_avg_pool_count_pad_and_global():
    typed = "1,2;3,4"
    with_pad = json.loads(
        run("pool", typed, "--size", "2", "--stride", "1", "--padding", "1", "--mode", "avg", "--json").stdout
    )["output"]
    without = json.loads(
        run(
            "pool", typed, "--size", "2", "--stride", "1", "--padding", "1", "--mode", "avg", "--no-count-pad", "--json"
        ).stdout
    )["output"]
    assert with_pad[0][0] == 0.25 and without[0][0] == 1 and without[1][1] == 2.5
    assert json.loads(run("pool", typed, "--global", "--json").stdout) == {"output": [4], "shape": [1]}


# Images through conv and pool.


def test_conv_on_an_image_writes_one_file_per_kernel(cat):
    result = run("conv", cat, "-k", "sobel-x", "-k", "gaussian", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["output_shape"] == [2, 298, 449] and summary["scale"] == ["offset", "clip"]
    assert summary["outputs"] == [str(cat.parent / "chelsea_sobel-x.png"), str(cat.parent / "chelsea_gaussian.png")]
    # offset: 0.5 + r / (2 max|r|), so zero is mid-grey
    assert run("conv", cat, "-k", "sobel-x", "-o", cat.parent / "exact.npy").exit_code == 0
    r = np.load(cat.parent / "exact.npy")[0]
    want = np.rint(255 * (0.5 + r / (2 * np.abs(r).max())))
    np.testing.assert_array_equal(np.asarray(Image.open(summary["outputs"][0])), want)


def test_tables_write_shapes_as_h_x_w_x_c(cat):
    # conv and pool printed CxHxW and edges HxW: one notation now, the one shape-calc uses
    table = run("conv", cat, "-k", "sobel-x", "-k", "box", "--channels", "rgb", "-o", cat.parent)
    header, row = table.stdout.splitlines()
    assert "size (H x W x C)" in header and "300 x 451 x 3" in row and "298 x 449 x 6" in row
    pooled = run("pool", cat, "-o", cat.parent).stdout.splitlines()[1]
    assert "300 x 451 x 1" in pooled and "150 x 225 x 1" in pooled
    edges = run("edges", cat, "--channels", "rgb").stdout.splitlines()[1]
    assert "300 x 451 x 3" in edges


def test_typed_matrices_may_start_with_a_minus_sign():
    assert run("pool", "-1,-2;-3,-4", "--size", "2").stdout == "-1\n"
    assert run("conv", "-1,2;3,4", "-k", "-1,0;0,1").stdout == "5\n"


def test_conv_image_to_tif_keeps_exact_values(cat, tmp_path):
    ndimage = pytest.importorskip("scipy.ndimage")
    out = tmp_path / "stack.tif"
    assert (
        run(
            "conv", cat, "-k", "sobel-x", "-k", "laplacian", "--padding", "same", "--mode", "reflect", "-o", out
        ).exit_code
        == 0
    )
    grey = Image.open(cat).convert("RGB")
    x = np.asarray(grey, np.float32) @ np.float32([0.299, 0.587, 0.114]) / 255
    with Image.open(out) as tif:
        pages = []
        for i in range(2):
            tif.seek(i)
            pages.append(np.asarray(tif))
    for page, name in zip(pages, ["sobel-x", "laplacian"]):
        want = ndimage.correlate(x.astype(np.float64), KERNELS[name].array(), mode="mirror")
        np.testing.assert_allclose(page, want, atol=1e-5)


def test_rgb_image_filters_each_channel(cat):
    ndimage = pytest.importorskip("scipy.ndimage")
    out = cat.parent / "rgb.npy"
    result = run("conv", cat, "-k", "laplacian", "--channels", "rgb", "-o", out)
    assert result.exit_code == 0 and "conv: 300 x 451 -> 298 x 449" in result.stderr
    rgb = np.asarray(Image.open(cat).convert("RGB"), np.float32).transpose(2, 0, 1) / 255
    want = [ndimage.correlate(p.astype(np.float64), KERNELS["laplacian"].array())[1:-1, 1:-1] for p in rgb]
    np.testing.assert_allclose(np.load(out), want, atol=1e-5)


def test_pool_on_an_image(cat):
    result = run("pool", cat, "--size", "4")
    assert result.exit_code == 0 and "maxpool: 300 x 451 -> 75 x 112" in result.stderr
    written = np.asarray(Image.open(cat.parent / "chelsea_maxpool.png"), np.float64)
    grey = np.asarray(Image.open(cat).convert("RGB"), np.float64) @ [0.299, 0.587, 0.114]
    blocks = grey[:300, :448].reshape(75, 4, 112, 4).max(axis=(1, 3))
    np.testing.assert_allclose(written, blocks, atol=0.51)


def test_list_kernels():
    data = json.loads(run("conv", "--list-kernels", "--json").stdout)
    assert [k["name"] for k in data] == list(KERNELS)
    sobel = next(k for k in data if k["name"] == "sobel-x")
    assert sobel["matrix"] == [[1, 0, -1], [2, 0, -2], [1, 0, -1]] and "left to right" in sobel["sign"]
    table = run("conv", "--list-kernels").stdout
    assert "[1 0 -1; 2 0 -2; 1 0 -1]" in table and "gaussian-5" in table


# edges.


def test_edges_main_job(cat):
    result = run("edges", cat)
    assert result.exit_code == 0, result.stderr
    assert (cat.parent / "chelsea_edges.png").exists()
    header, row = result.stdout.splitlines()
    assert header.split()[:7] == ["file", "size", "(H", "x", "W", "x", "C)"]
    assert str(cat) in row and "300 x 451 x 1" in row and "sobel" in row and "chelsea_edges.png" in row


def test_edges_json_and_a_directory_of_outputs(tmp_path, cat):
    step = grey_png(tmp_path / "step.png", np.repeat([[200] * 4 + [0] * 4], 8, axis=0))
    result = run("edges", cat, step, "-o", tmp_path / "out", "--filter", "scharr", "--json")
    data = json.loads(result.stdout)
    assert [d["output"] for d in data] == [
        str(tmp_path / "out/chelsea_edges.png"),
        str(tmp_path / "out/step_edges.png"),
    ]
    assert data[1]["height"] == 8 and data[1]["filter"] == "scharr" and data[1]["error"] is None
    assert data[1]["range"] == [0, pytest.approx(16 * 200 / 255, rel=1e-6)]
    assert set(data[0]) == {
        "file",
        "height",
        "width",
        "channels",
        "filter",
        "range",
        "seconds",
        "output",
        "outputs",
        "notes",
        "error",
    }


def test_edges_goes_on_after_a_bad_file_and_exits_1(tmp_path, cat):
    (tmp_path / "broken.png").write_text("hello")
    result = run("edges", tmp_path / "broken.png", cat)
    assert result.exit_code == 1
    assert re.search(r"^Error: .*broken\.png is not an image", result.stderr, re.M)
    assert (cat.parent / "chelsea_edges.png").exists() and not (tmp_path / "broken_edges.png").exists()
    assert "1 of 2 files failed" in result.stderr


def test_image_notes_go_to_stderr(tmp_path):
    frames = [Image.new("L", (6, 4), level) for level in (50, 120)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    result = run("edges", tmp_path / "anim.gif")
    assert result.exit_code == 0 and "2 frames; using the first" in result.stderr
    assert "2 frames" not in result.stdout


def png_with_header(path, width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("make", ["rgba", "sixteen", "palette", "cmyk"])
def test_unusual_images_work(tmp_path, make):
    rng = np.random.default_rng(5)
    if make == "rgba":
        image = Image.fromarray(rng.integers(0, 256, (9, 9, 4), dtype=np.uint8))
    elif make == "sixteen":
        image = Image.fromarray(rng.integers(0, 65536, (9, 9)).astype(np.uint16))
    elif make == "palette":
        image = Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).convert("P")
    else:
        image = Image.new("CMYK", (9, 9), (0, 255, 255, 0))
    path = tmp_path / ("img.jpg" if make == "cmyk" else "img.png")
    image.save(path)
    for command in (["edges"], ["conv", "-k", "laplacian"], ["pool"]):
        result = run(*command, path)
        assert result.exit_code == 0, (command, result.stderr)
        if make in ("rgba", "cmyk"):  # the conversion is said on stderr, not stdout
            note = "transparent pixels" if make == "rgba" else "CMYK"
            assert note in result.stderr and note not in result.stdout


def test_sixteen_bit_output(tmp_path):
    src = grey_png(tmp_path / "noise.png", np.random.default_rng(6).integers(0, 256, (10, 10)))
    assert run("edges", src, "--bit-depth", "16", "-o", tmp_path / "deep.png").exit_code == 0
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")


# Bad input: Error naming the file or value, exit 1, no traceback, nothing written.


def bad_files(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    whole = io.BytesIO()
    Image.fromarray(noise).save(whole, format="PNG")
    (tmp_path / "cut.png").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "folder.png").mkdir()
    png_with_header(tmp_path / "bomb.png", 100_000, 100_000)
    grey_png(tmp_path / "small.png", noise[:20, :20])


@pytest.mark.parametrize(
    "name, extra, words",
    [
        ("missing.png", [], ["missing.png: no such file"]),
        ("folder.png", [], ["folder.png is a directory"]),
        ("empty.png", [], ["empty.png is empty"]),
        ("cut.png", [], ["cut.png: cannot decode"]),
        ("notes.png", [], ["notes.png is not an image"]),
        ("bomb.png", [], ["bomb.png has 10,000,000,000 pixels", "--max-pixels"]),
        ("small.png", ["--max-pixels", "100"], ["small.png has 400 pixels", "limit of 100"]),
    ],
)
@pytest.mark.parametrize("command", [["edges"], ["conv", "-k", "sobel-x"], ["pool"]])
def test_bad_image_files(tmp_path, command, name, extra, words):
    bad_files(tmp_path)
    before = sorted(tmp_path.iterdir())
    result = run(*command, tmp_path / name, *extra)
    if command == ["edges"]:  # one input, and it failed: the error line and nothing on stdout
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert all(w in result.stderr for w in words) and result.stdout == ""
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    else:
        assert failed(result, *words)
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "args, words",
    [
        (["-k", "1,0;1"], ["ragged rows: row 2 has 1 values"]),
        (["-k", ""], ["--kernel is empty"]),
        (["-k", ";"], ["kernel ';' is not known"]),
        (["-k", "1,x;0,1"], ["non-numeric value 'x'"]),
        (["-k", "1,nan;0,1"], ["'nan'", "not finite"]),
        (["-k", "sobelx"], ["kernel 'sobelx' is not known (did you mean 'sobel-x'"]),
        (["-k", "gaussian-5"], ["kernel gaussian-5 (height)", "larger than the padded input 4"]),
        (["-k", "1,0;0,1|1,0;0,1"], ["kernel k1 has 2 channels", "has 1"]),
        (["-k", "sobel-x", "--stride", "0"], ["--stride=0 must be positive"]),
        (["-k", "sobel-x", "--stride", "-2"], ["--stride=-2 must be positive"]),
        (["-k", "sobel-x", "--dilation", "0"], ["--dilation=0"]),
        (["-k", "sobel-x", "-k", "gaussian-5", "--padding", "1"], ["gives a 2 x 2 output", "gives 4 x 4"]),
        (["-k", "sobel-x", "--padding", "lots"], ["padding 'lots'"]),
        ([], ["give at least one --kernel"]),
    ],
)
def test_bad_kernels_and_settings(args, words):
    assert failed(run("conv", "1,2,3,4;5,6,7,8;1,2,3,4;5,6,7,8", *args), *words)


def test_bad_kernel_on_an_image_writes_nothing(cat):
    (cat.parent / "empty.csv").write_text("")
    assert failed(run("conv", cat, "-k", cat.parent / "empty.csv"), "empty.csv is empty")
    assert failed(run("conv", cat, "-k", "1,0;0,1|1,0;0,1"), "kernel k1 has 2 channels", "has 1")
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png", "empty.csv"]


def test_several_inputs_need_an_output_directory(cat):
    result = run("edges", cat, cat, "-o", cat.parent / "out.png")
    assert failed(result, "-o", "out.png names a file, but there are 2 inputs")
    assert not (cat.parent / "out.png").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--size", "0"], ["--size=0 must be positive"]),
        (["--size", "-3"], ["--size=-3 must be positive"]),
        (["--stride", "0"], ["--stride=0 must be positive"]),
        (["--size", "9"], ["window f=9 is larger than the padded input 4"]),
        (["--size", "2", "--padding", "2"], ["padding p=2 is more than half the window f=2"]),
    ],
)
def test_bad_pool_settings(args, words):
    assert failed(run("pool", POOL_4X4, *args), *words)


@pytest.mark.parametrize("command", [["edges"], ["conv", "-k", "sobel-x"], ["pool"]])
def test_output_may_not_be_an_input(cat, command):
    before = cat.read_bytes()
    result = run(*command, cat, "-o", cat)
    assert result.exit_code == 1 and "is also an input" in result.stderr and "Traceback" not in result.stderr
    assert cat.read_bytes() == before and sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png"]


@pytest.mark.parametrize("command", [["edges"], ["conv", "-k", "sobel-x"], ["pool"]])
def test_output_under_a_regular_file(cat, command):
    (cat.parent / "plain.txt").write_text("x")
    result = run(*command, cat, "-o", cat.parent / "plain.txt" / "out.png")
    assert result.exit_code == 1 and "plain.txt is not a directory" in result.stderr
    assert sorted(p.name for p in cat.parent.iterdir()) == ["chelsea.png", "plain.txt"]


def test_edges_refuses_an_unwritable_output_directory(cat):
    (cat.parent / "plain.txt").write_text("x")
    result = run("edges", cat, cat, "-o", cat.parent / "plain.txt" / "dir")
    assert failed(result, "output directory", "plain.txt")


def test_usage_errors_keep_exit_code_2(cat):
    assert run("edges", cat, "--scale", "loud").exit_code == 2
    assert run("edges", cat, "--bit-depth", "12").exit_code == 2
    assert run("conv").exit_code == 2


@pytest.mark.parametrize("command", ["edges", "conv", "pool"])
def test_help_has_examples(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout
    assert f"convcli {command} " in result.stdout


def test_many_files_on_a_terminal_get_a_progress_bar(tmp_path, monkeypatch, capsys):
    from convcli.images.edges import detect_edges
    from convcli.render import images as render

    paths = [grey_png(tmp_path / f"g{i}.png", np.full((5, 5), 40 * i)) for i in range(4)]
    (tmp_path / "bad.png").write_text("no")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with render.progress(5) as on_file:
        results = detect_edges(paths + [tmp_path / "bad.png"], on_file=on_file)
    err = capsys.readouterr().err
    assert "edges" in err and "5/5" in err  # the bar, drawn on stderr
    assert "Error: " in err and "bad.png" in err and sum(r.error is not None for r in results) == 1


def test_edges_into_a_new_folder_named_with_a_slash(tmp_path, cat):
    """``-o edges/`` (the help's example) with one input makes the folder and writes into it; the
    trailing slash used to be lost on the way and the folder read as a file name without a suffix."""
    result = run("edges", cat, "-o", f"{tmp_path / 'edges'}/")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "edges" / "chelsea_edges.png").is_file()


EDGES_THEN_BLAS = """
import sys
from convcli.cli.app import main
sys.argv = ["convcli", "edges", sys.argv[1], "-o", sys.argv[2]]
try:
    main()
except SystemExit:
    pass
from threadpoolctl import threadpool_info
print([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"])
"""


@pytest.mark.parametrize("asked, threads", [(None, 1), ("2", 2)])
def test_edges_starts_openblas_with_one_thread_unless_told(tmp_path, asked, threads):
    import os
    import subprocess

    pytest.importorskip("threadpoolctl")
    src = grey_png(tmp_path / "step.png", [[0, 0, 255, 255]] * 4)
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if asked:
        env["OPENBLAS_NUM_THREADS"] = asked
    done = subprocess.run(
        [sys.executable, "-c", EDGES_THEN_BLAS, str(src), str(tmp_path / "out.png")],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert (tmp_path / "out.png").exists()
    assert done.stdout.strip().splitlines()[-1] == str([min(threads, os.cpu_count() or 1)])  # no more than cores
