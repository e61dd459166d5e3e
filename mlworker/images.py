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


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float images: stretch to 8 bits rather than clip to white.
        image = image.convert("F")
        lo, hi = image.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = image.point(lambda v: (v - lo) * scale).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def to_png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def thumbnail_png(image: Image.Image, size: int = 128) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((size, size))
    return to_png_bytes(thumb)
