"""Checking uploaded images before anything uses them, and turning them into plain RGB.

Knows nothing of Django. Every refusal is an ImageRejected whose message a student can act on.
"""

from __future__ import annotations

import io
import math
import warnings

from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Read from the file's header before a pixel is decoded: a 24-megapixel photo (6,000 x 4,000) is the
# largest we decode. A one-colour PNG of 10,000 x 10,000 packs into a few kilobytes but would take
# 300 MB to decode: refused as too large. (PIL's own bomb check, Image.MAX_IMAGE_PIXELS, is higher.)
MAX_PIXELS = 24_000_000
FORMATS = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"}
# Greyscale images, and images this small, are kept as PNG when that is smaller than the JPEG.
PNG_CANDIDATE_PIXELS = 128 * 128
JPEG_QUALITY = 90


class ImageRejected(ValueError):
    pass


def _too_large(name: str, size: tuple[int, int] | None = None) -> ImageRejected:
    pixels = f"{size[0]}×{size[1]} pixels" if size else "more pixels than we can open"
    return ImageRejected(
        f"{name} is too large: {pixels}, and the most we accept is {MAX_PIXELS // 1_000_000} million pixels. "
        "Make it smaller (a photo of 2,000 pixels a side is plenty) and send it again."
    )


def too_large_to_read(name: str, limit: int) -> str:
    """The refusal of a file found too large while it was read, before its whole size was known."""
    return f"{name} is more than {limit // 2**20} MB; the most we accept is {limit // 2**20} MB."


def read_capped(file, name: str = "the file", limit: int | None = None) -> bytes:
    """The bytes of an uploaded file, refused as too large without reading more than `limit` + 1 of them."""
    limit = MAX_UPLOAD_BYTES if limit is None else limit
    size = getattr(file, "size", None)
    if size is not None and size > limit:
        raise ImageRejected(f"{name} is {size / 2**20:.1f} MB; the most we accept is {limit // 2**20} MB.")
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ImageRejected(too_large_to_read(name, limit))
    return data


def open_upload(data: bytes, *, name: str = "the file", fit: int | None = None) -> Image.Image:
    """Return the upload as an RGB image, upright, first frame only; or raise ImageRejected.

    With `fit`, the image comes back no larger than training can use (see `shrink`), and a JPEG is
    decoded at a reduced scale to begin with, so a big photo never takes its full size in memory.
    """
    if not data:
        raise ImageRejected(f"{name} is empty (0 bytes).")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected(
            f"{name} is {len(data) / 2**20:.1f} MB; the most we accept is {MAX_UPLOAD_BYTES // 2**20} MB."
        )
    with warnings.catch_warnings():
        # Image.open reads the header only; a huge declared size is refused before any pixel is decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(name) from None
        except UnidentifiedImageError:
            raise ImageRejected(f"{name} is not an image we can read (JPEG, PNG, GIF, WebP, BMP or TIFF).") from None
        except OSError:
            raise ImageRejected(f"{name} is damaged and cannot be read.") from None
        if probe.format not in FORMATS:
            raise ImageRejected(f"{name} is a {probe.format} file; send a JPEG, PNG, GIF, WebP, BMP or TIFF image.")
        width, height = probe.size
        if width * height > MAX_PIXELS:
            raise _too_large(name, probe.size)
        try:
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.seek(0)  # animated images: the first frame
            if fit and image.format in ("JPEG", "MPO"):
                # Decode at 1/2, 1/4 or 1/8 scale where that still leaves the short side >= fit.
                scale = fit / min(width, height)
                if scale < 1:
                    image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(name) from None
        except (OSError, SyntaxError, ValueError):
            raise ImageRejected(
                f"{name} is truncated or damaged; open it on your computer and save it again."
            ) from None
    image = to_rgb(ImageOps.exif_transpose(image))
    return shrink(image, fit) if fit else image


def shrink(image: Image.Image, side: int) -> Image.Image:
    """The image no larger than training at `side` pixels can use, aspect kept: fastai's Resize(side)
    scales the short side to `side` and crops the rest, so the short side needs no more than `side`;
    the long side is kept to 4 x `side` (a panorama's crop never uses more)."""
    width, height = image.size
    scale = min(side / min(width, height), 4 * side / max(width, height))
    if scale >= 1:
        return image
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)


def compact_bytes(image: Image.Image) -> tuple[bytes, str]:
    """The image encoded small, and its file suffix: JPEG (quality 90) for photos; a greyscale or
    tiny image also tries PNG (lossless; often smaller for drawings) and keeps the smaller."""
    grey = _is_grey(image)
    if grey:
        image = image.convert("L")
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    best = (jpeg.getvalue(), ".jpg")
    if grey or image.width * image.height <= PNG_CANDIDATE_PIXELS:
        png = to_png_bytes(image)
        if len(png) < len(best[0]):
            best = (png, ".png")
    return best


def _is_grey(image: Image.Image) -> bool:
    if image.mode == "L":
        return True
    if image.mode != "RGB":
        return False
    r, g, b = image.split()
    return ImageChops.difference(r, g).getbbox() is None and ImageChops.difference(g, b).getbbox() is None


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


def thumbnail(image: Image.Image, size: int = 128) -> tuple[bytes, str]:
    """A small copy for pages to show, encoded as `compact_bytes` does."""
    thumb = image.copy()
    thumb.thumbnail((size, size))
    return compact_bytes(thumb)
