"""Checking uploaded images before anything uses them, and turning them into plain RGB.

Knows nothing of Django. Every refusal is an ImageRejected whose message a student can act on.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # about 6,300 x 6,300: far above any photo a student would send
FORMATS = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"}


class ImageRejected(ValueError):
    pass


def open_upload(data: bytes, *, name: str = "the file") -> Image.Image:
    """Return the upload as an RGB image, upright, first frame only; or raise ImageRejected."""
    if not data:
        raise ImageRejected(f"{name} is empty (0 bytes).")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected(
            f"{name} is {len(data) / 2**20:.1f} MB; the most we accept is {MAX_UPLOAD_BYTES // 2**20} MB."
        )
    with warnings.catch_warnings():
        # A huge declared size is refused before any pixel is decoded (decompression bombs).
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"{name} is not an image we can read (JPEG, PNG, GIF, WebP, BMP or TIFF).") from None
        except OSError:
            raise ImageRejected(f"{name} is damaged and cannot be read.") from None
        if probe.format not in FORMATS:
            raise ImageRejected(f"{name} is a {probe.format} file; send a JPEG, PNG, GIF, WebP, BMP or TIFF image.")
        width, height = probe.size
        if width * height > MAX_PIXELS:
            raise ImageRejected(
                f"{name} is {width}×{height} pixels, more than the {MAX_PIXELS // 1_000_000} million we accept. "
                "Resize it and try again."
            )
        try:
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.seek(0)  # animated images: the first frame
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning):
            raise ImageRejected(
                f"{name} is truncated or damaged; open it on your computer and save it again."
            ) from None
    return to_rgb(ImageOps.exif_transpose(image))


HIGH_DEPTH = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535}


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in HIGH_DEPTH or image.mode in ("I", "F"):
        image = to_8_bits(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def to_8_bits(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float greyscale image as 8 bits, scaled by the range its format can hold,
    not by its own darkest and brightest pixel: a mid-grey 16-bit PNG stays mid-grey (stretching a
    flat image made it black, and stretched any image's contrast).

    16-bit modes span 0 to 65535. A 32-bit integer image ("I", as some TIFFs and older PNG readers
    give) is taken as 16-bit when its values fit, else stretched over 0 to its brightest pixel. A
    float image is taken as 0 to 1 when its values fit, else as 0 to 255, else stretched the same way."""
    lo, hi = image.getextrema()
    if image.mode in HIGH_DEPTH:
        top = HIGH_DEPTH[image.mode]
    elif image.mode == "F" and lo >= 0 and hi <= 1:
        top = 1.0
    elif lo >= 0 and hi <= 255 and image.mode == "F":
        top = 255.0
    elif image.mode == "I" and lo >= 0 and hi <= 65535:
        top = 65535
    else:
        top = max(hi, 1)
    scale = 255.0 / top
    # point() on "F" takes a linear map; converting to "L" then clips below 0 and above 255.
    return image.convert("F").point(lambda v: v * scale).convert("L")


def to_png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def thumbnail_png(image: Image.Image, size: int = 128) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((size, size))
    return to_png_bytes(thumb)
