"""Reading images (convcli.images.read): bad inputs named, conversions on purpose."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from convcli.errors import InputError
from convcli.images.read import LoadedImage, read_image

from conftest import SAMPLES

REC601 = np.float32([0.299, 0.587, 0.114])


def save(image, path, **options):
    image.save(path, **options)
    return path


def png_bytes(width, height, depth=8, colour=0, rows=None):
    """A PNG built by hand; without ``rows`` it is only a header claiming its size."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = b"" if rows is None else chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + row.tobytes() for row in rows)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + body + chunk(b"IEND", b"")


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


# Bad inputs: an InputError that names the file.


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.png: no such file"):
        read_image(tmp_path / "nothere.png")


def test_directory(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path.name} is a directory"):
        read_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.png is empty"):
        read_image(tmp_path / "empty.png")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(InputError, match=r"notes\.png is not an image"):
        read_image(tmp_path / "notes.png")


def test_truncated_png(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    whole = io.BytesIO()
    Image.fromarray(noise).save(whole, format="PNG")
    (tmp_path / "cut.png").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(InputError, match=r"cut\.png: cannot decode"):
        read_image(tmp_path / "cut.png")


def test_header_claiming_a_huge_image_is_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_bytes(100_000, 100_000))
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "bomb.png")
    message = str(caught.value)
    assert "bomb.png" in message and "10,000,000,000 pixels" in message
    assert "100,000,000" in message and "--max-pixels" in message
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's own limit is restored


def test_raising_the_limit_lets_the_header_through(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_bytes(100_000, 100_000))
    # With the limit raised the file is decoded, and fails for what it is: a header only.
    with pytest.raises(InputError, match="cannot decode"):
        read_image(tmp_path / "bomb.png", max_pixels=10**11)


@pytest.mark.parametrize("limit", [150, 50])  # Pillow warns up to 2x its limit, errors above
def test_lowered_limit_refuses_a_real_image(tmp_path, limit):
    path = save(Image.new("L", (20, 10)), tmp_path / "small.png")
    with pytest.raises(InputError, match=f"small.png has 200 pixels.*limit of {limit} pixels"):
        read_image(path, max_pixels=limit)
    assert read_image(path, max_pixels=200).array.shape == (1, 10, 20)


def test_unsupported_mode_is_a_clear_error(tmp_path):
    path = save(Image.new("RGB", (4, 4)).convert("LAB"), tmp_path / "lab.tif")
    with pytest.raises(InputError, match=r"lab\.tif: pixel mode 'LAB' is not supported"):
        read_image(path)


def test_32_bit_integers_beyond_16_bits_are_refused(tmp_path):
    values = np.array([[0, 70_000]], dtype=np.int32)
    path = save(Image.fromarray(values), tmp_path / "wide.tif")
    with pytest.raises(InputError, match=r"wide\.tif.*70000"):
        read_image(path)


# Conversions.


def test_sample_photo_matches_pillow_and_rec601(tmp_path):
    path = SAMPLES / "astronaut.png"
    gray = read_image(path)
    assert isinstance(gray, LoadedImage)
    assert gray.array.shape == (1, 512, 512) and gray.array.dtype == np.float32
    assert (gray.bit_depth, gray.mode, gray.format, gray.notes) == (8, "RGB", "PNG", ())
    rgb = read_image(path, channels="rgb").array
    pixels = np.asarray(Image.open(path), dtype=np.float32) / 255
    np.testing.assert_array_equal(rgb, pixels.transpose(2, 0, 1))
    np.testing.assert_allclose(gray.array[0], pixels @ REC601, atol=1e-6)
    # Pillow's convert("L") rounds the same weights to integers.
    pillow = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    assert np.abs(gray.array[0] - pillow).max() <= 1 / 255 + 1e-6


def test_grayscale_uses_rec601_weights(tmp_path):
    path = save(Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)), tmp_path / "rgb.png")
    # float32 arithmetic: the integer sum is divided by 255000, so within one ulp
    np.testing.assert_allclose(read_image(path).array[0, 0], REC601, rtol=2e-7)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_pure_white_is_exactly_one(tmp_path, mode):
    # float32 0.299 + 0.587 + 0.114 is 1.0000001: pool --scale auto then took white for out of
    # range. RGB goes from the bytes to grey, RGBA through float (alpha first).
    white = np.full((2, 3, 4), 255, np.uint8)
    white[0, 0] = (10, 200, 30, 255)
    path = save(Image.fromarray(white if mode == "RGBA" else white[..., :3]), tmp_path / "w.png")
    loaded = read_image(path)
    assert loaded.array.max() == 1.0 and loaded.array[0, 1, 1] == 1.0


def test_grey_image_as_rgb_repeats_the_channel(tmp_path):
    path = save(Image.fromarray(np.array([[0, 51, 255]], np.uint8)), tmp_path / "grey.png")
    loaded = read_image(path, channels="rgb")
    np.testing.assert_array_equal(loaded.array, np.tile(np.float32([0, 0.2, 1]), (3, 1, 1)))
    assert "repeated into 3" in loaded.notes[0]


@pytest.mark.parametrize(
    "fmt, suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp"), ("PPM", ".ppm")]
)
def test_lossless_formats_read_exactly(tmp_path, fmt, suffix):
    pixels = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    options = {"lossless": True} if fmt == "WEBP" else {}
    path = save(Image.fromarray(pixels), tmp_path / f"img{suffix}", **options)
    loaded = read_image(path, channels="rgb")
    assert loaded.format == fmt
    np.testing.assert_array_equal(loaded.array, pixels.transpose(2, 0, 1) / np.float32(255))


def test_16_bit_png_keeps_every_level(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)
    path = save(Image.fromarray(ramp), tmp_path / "ramp16.png")
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.mode.startswith("I;16")
    np.testing.assert_array_equal(loaded.array[0], ramp.astype(np.float32) / 65535)
    assert len(np.unique(loaded.array)) == 64 * 64  # not squeezed into 256 levels


def test_16_bit_colour_png_is_read_at_8_bits_and_says_so(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 65536, (3, 4, 3)).astype(">u2")  # H, W, C
    (tmp_path / "deep.png").write_bytes(png_bytes(4, 3, depth=16, colour=2, rows=rgb))
    loaded = read_image(tmp_path / "deep.png", channels="rgb")
    assert loaded.bit_depth == 8 and any("Pillow reads it at 8 bits" in n for n in loaded.notes)
    high_bytes = (rgb >> 8).astype(np.float32) / 255
    np.testing.assert_array_equal(loaded.array, high_bytes.transpose(2, 0, 1))


def test_animated_gif_reads_the_first_frame_and_says_so(tmp_path):
    frames = [Image.new("L", (6, 4), level) for level in (50, 120, 200)]
    path = save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    loaded = read_image(path)
    # Grey through the GIF palette's RGB and the Rec.601 weights: exact to float32 rounding.
    np.testing.assert_allclose(loaded.array, np.full((1, 4, 6), 50 / 255), atol=1e-7)
    assert any("3 frames" in note and "first" in note for note in loaded.notes)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "red.jpg")
    loaded = read_image(path, channels="rgb")
    assert loaded.mode == "CMYK" and any("CMYK" in note for note in loaded.notes)
    np.testing.assert_allclose(loaded.array[:, 8, 8], [1, 0, 0], atol=0.02)


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40), np.uint8)  # H=20, W=40, bright block at the top left
    stored[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = save(Image.fromarray(stored), tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = read_image(path)
    assert loaded.array.shape == (1, 40, 20)
    assert loaded.array[0, :8, -8:].mean() > 0.9  # the block is now at the top right
    assert any("orientation 6" in note for note in loaded.notes)


def rgba_path(tmp_path, alpha):
    pixel = np.array([[[255, 0, 0, alpha]]], np.uint8)
    return save(Image.fromarray(pixel), tmp_path / "rgba.png")


@pytest.mark.parametrize(
    "mode, expected, note",
    [
        ("white", 0.299 + (0.587 + 0.114) * (1 - 102 / 255), "composited onto white"),
        ("black", 0.299 * 102 / 255, "composited onto black"),
        ("drop", 0.299, "alpha ignored"),
    ],
)
def test_alpha_is_handled_on_purpose(tmp_path, mode, expected, note):
    loaded = read_image(rgba_path(tmp_path, 102), alpha=mode)
    assert loaded.array[0, 0, 0] == pytest.approx(expected, abs=1e-6)
    assert loaded.notes == (f"{tmp_path / 'rgba.png'} has transparent pixels; {note}",)


def test_opaque_alpha_is_dropped_silently(tmp_path):
    loaded = read_image(rgba_path(tmp_path, 255))
    assert loaded.array[0, 0, 0] == pytest.approx(0.299) and loaded.notes == ()


def test_grey_with_alpha(tmp_path):
    grey_alpha = Image.merge("LA", [Image.new("L", (1, 1), 0), Image.new("L", (1, 1), 51)])
    path = save(grey_alpha, tmp_path / "la.png")
    assert read_image(path).array[0, 0, 0] == pytest.approx(0.8)  # black at 20% on white


def test_palette_image_with_and_without_transparency(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    loaded = read_image(save(image, tmp_path / "pal.png"))
    assert loaded.mode == "P"
    np.testing.assert_allclose(loaded.array[0, 0], [0, 0.299], atol=1e-6)
    see_through = read_image(save(image, tmp_path / "palt.png", transparency=0))
    np.testing.assert_allclose(see_through.array[0, 0], [1, 0.299], atol=1e-6)


def test_one_bit_image(tmp_path):
    image = Image.new("1", (3, 2))
    image.putpixel((1, 0), 1)
    loaded = read_image(save(image, tmp_path / "bits.png"))
    assert loaded.bit_depth == 1
    np.testing.assert_array_equal(loaded.array[0], [[0, 1, 0], [0, 0, 0]])


def test_32_bit_integer_image_within_16_bits(tmp_path):
    values = np.array([[0, 1000, 65535]], dtype=np.int32)
    loaded = read_image(save(Image.fromarray(values), tmp_path / "int.tif"))
    assert loaded.mode == "I" and loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.array[0], values.astype(np.float32) / 65535)


def test_float_image_keeps_its_values(tmp_path):
    values = np.array([[-1.5, 0.0, 3.25]], dtype=np.float32)
    loaded = read_image(save(Image.fromarray(values), tmp_path / "float.tif"))
    assert loaded.bit_depth == 32
    np.testing.assert_array_equal(loaded.array[0], values)
    assert any("not scaled" in note for note in loaded.notes)


def test_grey_jpeg_is_the_luma_it_stores(tmp_path):
    # A grey read of a JPEG is the Y plane libjpeg decodes (as OpenCV's IMREAD_GRAYSCALE). It equals
    # the Rec.601 weighting of the decoded colours to within rounding, except where decoding clipped
    # a colour channel to 0 or 255 (saturated colours after chroma subsampling): there Y is truer.
    rgb = np.asarray(Image.open(SAMPLES / "coffee.png").convert("RGB"))
    path = tmp_path / "coffee.jpg"
    Image.fromarray(rgb).save(path, quality=90)
    decoded = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    grey = read_image(path).array[0] * 255
    assert grey.shape == rgb.shape[:2]
    clipped = ((decoded == 0) | (decoded == 255)).any(axis=-1)
    difference = np.abs(grey - decoded @ np.array(REC601, dtype=np.float64))
    assert difference[~clipped].max() <= 0.5 + 1e-3
    assert difference.mean() < 0.5


def test_grey_jpeg_is_what_opencv_reads_as_grey(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "chelsea.jpg"
    Image.open(SAMPLES / "chelsea.png").convert("RGB").save(path, quality=90)
    expected = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    np.testing.assert_array_equal(read_image(path).array[0], expected)
