"""Writing arrays (convcli.images.write): one table from suffix to writer, values never clipped
silently, the fast PNG encoder against Pillow's, nothing half-written."""

import numpy as np
import pytest
from PIL import Image

from convcli.errors import OutputError
from convcli.images.matrix import read_matrix
from convcli.images.read import read_image
from convcli.images.write import EXACT_SUFFIXES, WRITERS, write_image

COURSE = [[3, 0, 1], [1, 5, 8], [2, 7, 2]]


def save(image, path, **options):
    image.save(path, **options)
    return path


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


def test_png_8_bit_round_trip(tmp_path):
    levels = np.random.default_rng(2).integers(0, 256, (3, 5, 6))
    for volume, channels in [(levels[:1], "gray"), (levels, "rgb")]:
        out = write_image(tmp_path / f"{channels}.png", volume / 255)
        np.testing.assert_array_equal(read_image(out, channels=channels).array, volume.astype(np.float32) / 255)


def test_png_16_bit_round_trip(tmp_path):
    ramp = np.arange(0, 65536, 17, dtype=np.float64)[:3840].reshape(48, 80) / 65535
    loaded = read_image(write_image(tmp_path / "deep.png", ramp, bit_depth=16))
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.array[0], ramp.astype(np.float32))


def test_tiff_keeps_negative_float32_values_exactly(tmp_path):
    response = np.array([[-3.25, 0.0, 1e-8], [123456.78, -0.1, 7.0]], dtype=np.float32)
    # The scale applies to 8/16-bit formats only; TIFF keeps the values.
    loaded = read_image(write_image(tmp_path / "response.tif", response, scale="abs"))
    np.testing.assert_array_equal(loaded.array[0], response)


def test_tiff_writes_one_page_per_channel(tmp_path):
    volume = np.random.default_rng(3).normal(size=(3, 4, 5)).astype(np.float32)
    out = write_image(tmp_path / "stack.tiff", volume)
    with Image.open(out) as image:
        pages = []
        for index in range(image.n_frames):
            image.seek(index)
            pages.append(np.asarray(image))
    np.testing.assert_array_equal(np.stack(pages), volume)


def test_npy_round_trip_any_array(tmp_path):
    batch = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5) - 50
    out = write_image(tmp_path / "batch.npy", batch)
    loaded = np.load(out)
    assert loaded.dtype == np.int16
    np.testing.assert_array_equal(loaded, batch)


@pytest.mark.parametrize("suffix", [".bmp", ".webp", ".jpg"])
def test_other_8_bit_formats(tmp_path, suffix):
    ramp = np.tile(np.arange(32) / 31, (8, 1))
    loaded = read_image(write_image(tmp_path / f"ramp{suffix}", ramp))
    tolerance = 3 / 255 if suffix == ".jpg" else 1 / 510
    np.testing.assert_allclose(loaded.array[0], ramp, atol=tolerance)


def test_signed_values_need_a_scale(tmp_path):
    response = np.array([[-1.0, 0.0, 2.0]])
    with pytest.raises(OutputError, match=r"edges\.png.*\[-1, 2\].*scale"):
        write_image(tmp_path / "edges.png", response)
    assert files_in(tmp_path) == []
    loaded = read_image(write_image(tmp_path / "edges.png", response, scale="offset"))
    np.testing.assert_array_equal(loaded.array[0, 0], np.float32([64, 128, 255]) / 255)


@pytest.mark.parametrize(
    "name, volume, bits, match",
    [
        ("out.gif", np.zeros((2, 2)), 8, r"unknown suffix '\.gif'.*\.png \.tif \.tiff \.npy"),
        ("out", np.zeros((2, 2)), 8, "unknown suffix"),
        ("out.jpg", np.zeros((2, 2)), 16, "16 bits is for one-channel PNG"),
        ("out.png", np.zeros((3, 2, 2)), 16, "16 bits is for one-channel PNG"),
        ("out.png", np.zeros((4, 2, 2)), 8, "1 or 3 channels, got 4"),
        ("out.png", np.zeros((2, 2, 2, 2)), 8, "expected an"),
    ],
)
def test_outputs_a_format_cannot_hold_are_refused(tmp_path, name, volume, bits, match):
    with pytest.raises(OutputError, match=match):
        write_image(tmp_path / name, volume, bit_depth=bits)
    assert files_in(tmp_path) == []


def test_refuses_to_write_over_its_input(tmp_path):
    photo = save(Image.new("L", (4, 4), 77), tmp_path / "photo.png")
    before = photo.read_bytes()
    loaded = read_image(photo)
    with pytest.raises(OutputError, match="input"):
        write_image(photo, loaded.array, inputs=[loaded.path])
    assert photo.read_bytes() == before


def test_failing_encoder_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, format=None, **options):
        fp.write(b"\x89PNG half")
        raise OSError("encoder error -2 when writing image file")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OutputError, match=r"out\.bmp.*encoder error"):
        write_image(tmp_path / "out.bmp", np.zeros((3, 3)))
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".npy"])
@pytest.mark.parametrize(
    "array, integer",
    [
        (np.array(COURSE), True),
        (np.array([[[0.5, -1.25]], [[3.0, 0.0625]]]), False),
    ],
)
def test_matrix_files_round_trip(tmp_path, suffix, array, integer):
    out = write_image(tmp_path / f"m{suffix}", array, integer=integer)
    parsed = read_matrix(str(out))
    assert parsed.integer == integer
    np.testing.assert_array_equal(parsed.array, array)


def test_a_matrix_file_is_not_written_over_its_input(tmp_path):
    source = tmp_path / "k.csv"
    source.write_text("1,2\n")
    with pytest.raises(OutputError, match="input"):
        write_image(source, np.eye(2), inputs=[source])
    assert source.read_text() == "1,2\n"


def test_exact_suffixes_come_from_the_one_table():
    assert EXACT_SUFFIXES == (".tif", ".tiff", ".npy", ".csv", ".txt")
    assert set(WRITERS) == set(EXACT_SUFFIXES) | {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def test_png_does_not_import_the_writer():
    # the encoder is low-level: the dispatch is write.py's, and png.py never calls back up into it
    # (it may use the compute core's threads, convcli.ops)
    import ast
    from pathlib import Path

    import convcli.images.png

    tree = ast.parse(Path(convcli.images.png.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name.startswith("convcli.images") for name in imported if name)


@pytest.mark.parametrize(
    "scale, reference", [("abs", None), ("abs", 0.7), ("offset", None), ("clip", None), ("minmax", None), (None, None)]
)
@pytest.mark.parametrize("channels, bits", [(1, 8), (1, 16), (3, 8)])
def test_png_strips_and_bands_give_the_levels_of_the_whole(tmp_path, monkeypatch, scale, reference, channels, bits):
    import convcli.images.png
    import convcli.images.write
    from convcli.images.tonemap import to_display

    monkeypatch.setattr(convcli.images.write, "STRIP_BYTES", 8 * channels * 37 * 5)  # 5-row strips, a short last one
    monkeypatch.setattr(convcli.images.png, "BAND_MIN_BYTES", 1)  # and 3 bands of rows on threads
    monkeypatch.setenv("CONVCLI_THREADS", "3")
    values = np.random.default_rng(7).normal(size=(channels, 23, 37)).astype(np.float32)
    if scale is None:
        values = np.abs(values) / np.abs(values).max()
    out = write_image(tmp_path / "strips.png", values, bit_depth=bits, scale=scale, reference=reference)
    shown = values if scale is None else to_display(values, scale, reference)  # the whole image at once
    levels = np.rint(shown * (255 if bits == 8 else 65535)).astype(np.int64)
    decoded = np.asarray(Image.open(out)).astype(np.int64)
    np.testing.assert_array_equal(decoded, levels[0] if channels == 1 else levels.transpose(1, 2, 0))
