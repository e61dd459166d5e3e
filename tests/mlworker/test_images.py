"""Uploaded images are checked before use: refused with a clear message, or converted and oriented."""

import io
import struct
import zlib

import pytest
from PIL import Image

from mlworker.images import MAX_PIXELS, ImageRejected, open_upload, to_rgb


def encode(image, fmt="PNG", **kwargs):
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_it_accepts_a_plain_jpeg():
    image = open_upload(encode(Image.new("RGB", (40, 30), "red"), "JPEG"), name="cat.jpg")
    assert image.mode == "RGB" and image.size == (40, 30)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "is empty"),
        (b"hello, I am a text file pretending to be a picture", "not an image we can read"),
        (b"%PDF-1.4 not an image", "not an image we can read"),
    ],
)
def test_it_refuses_what_is_not_an_image(data, words):
    with pytest.raises(ImageRejected, match=words):
        open_upload(data, name="photo.jpg")


def test_it_refuses_a_truncated_image():
    data = encode(Image.effect_noise((200, 200), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageRejected, match="truncated or damaged"):
        open_upload(data[: len(data) // 2], name="half.jpg")


def _png_header_only(width, height):
    """A tiny PNG file that declares an enormous size: a decompression bomb."""

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_it_refuses_a_huge_declared_size_before_decoding():
    data = _png_header_only(100_000, 100_000)
    assert len(data) < 100
    with pytest.raises(ImageRejected, match="bomb.png is too large"):  # not "an image we cannot read"
        open_upload(data, name="bomb.png")


def test_it_refuses_more_pixels_than_the_limit():
    side = int(MAX_PIXELS**0.5) + 10
    with pytest.raises(ImageRejected, match=f"big.png is too large: {side}×{side} pixels"):
        open_upload(_png_header_only(side, side), name="big.png")


def test_it_takes_the_first_frame_of_an_animated_gif():
    frames = [Image.new("P", (20, 20), i) for i in (1, 2, 3)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert open_upload(data).size == (20, 20)


def test_it_scales_a_16_bit_image_by_its_range_not_its_extremes():
    image = Image.new("I;16", (10, 10), 1000)
    image.putpixel((0, 0), 60000)
    result = open_upload(encode(image))
    # 60000 of 65535 is 233 of 255; a dark pixel stays dark rather than being stretched to black or white.
    assert result.mode == "RGB" and result.getpixel((0, 0)) == (233, 233, 233) and result.getpixel((5, 5))[0] == 3


def test_a_mid_grey_16_bit_png_stays_mid_grey():
    flat = Image.new("I;16", (12, 12), 32768)  # a flat image: stretching by its extremes made it black
    assert open_upload(encode(flat)).getpixel((6, 6)) == (127, 127, 127)


@pytest.mark.parametrize(
    ("mode", "value", "grey"),
    [("I", 32768, 127), ("I", 65535, 255), ("F", 0.5, 127), ("F", 200.0, 200), ("F", -3.0, 0)],
)
def test_it_scales_32_bit_and_float_images_by_their_range(mode, value, grey):
    assert to_rgb(Image.new(mode, (4, 4), value)).getpixel((1, 1)) == (grey, grey, grey)


def test_it_converts_cmyk_and_palette_images():
    assert open_upload(encode(Image.new("CMYK", (10, 10), (0, 255, 255, 0)), "JPEG")).mode == "RGB"
    palette = Image.new("P", (10, 10), 3)
    assert open_upload(encode(palette)).mode == "RGB"


def test_it_puts_transparent_pixels_on_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert open_upload(encode(image)).getpixel((1, 1)) == (255, 255, 255)


def test_it_turns_an_exif_rotated_photo_upright():
    image = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    result = open_upload(encode(image, "JPEG", exif=exif.tobytes()))
    assert result.size == (20, 40)


def test_it_refuses_a_file_over_the_size_limit(monkeypatch):
    monkeypatch.setattr("mlworker.images.MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(ImageRejected, match="the most we accept is"):
        open_upload(b"x" * 2000)
