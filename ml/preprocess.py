"""Turn uploaded image bytes into the network's input array.

Numpy, Pillow and OpenCV only: no TensorFlow here, so web processes can validate uploads cheaply.

Pipeline (``preprocess_bytes``):
1. ``decode_image``: accept JPEG or PNG only, decode JPEGs at a reduced scale (draft mode),
   apply the EXIF orientation, convert to RGB, and straighten a photographed printout
   (``ml.rectify``: a scan comes back as it is). Every face decodes through ``decode_page``.
2. ``crop_trace_area``: cut away the printed header and footer (patient fields, dates:
   no diagnosis there, and a model must not learn from them), proportionally to page size.
3. ``preprocess``: take ink from the red channel (the pink grid vanishes there, black
   traces stay dark), thicken thin traces so they survive downscaling, resize to
   ``INPUT_SIZE`` square, scale to [-1, 1] as MobileNetV2 expects, repeat on 3 channels.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from ml.layout import TRACE_BOX_FRACTIONS
from ml.rectify import rectify

INPUT_SIZE = 224
# What every face accepts and how large, defined once: the upload path (which may lower the
# ceiling with ECGSITE_MAX_IMAGE_PIXELS), the workers and the command-line tools.
# Each accepted format and how its files begin (the API refuses others before reading them).
FORMAT_SIGNATURES: dict[str, bytes] = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n"}
ACCEPTED_FORMATS: tuple[str, ...] = tuple(FORMAT_SIGNATURES)
# The file names the command lines and reports take for page images in a folder.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
# Anything larger is not a scanned ECG page; refusing early bounds memory per request.
MAX_PIXELS = 40_000_000
# Smaller pages cannot hold readable traces (a small grid square would be under 1 px).
MIN_SIDE = 64
EXIF_ORIENTATION = 0x0112


class InvalidImageError(ValueError):
    """An image that cannot be used as an ECG page.

    ``reason`` reads after a file's name ("scan.jpg: is empty."); ``str(error)`` is the whole
    sentence for users ("The file is empty.").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"The file {reason}")
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB page, the format its bytes were in ("JPEG" or "PNG"), and where the page
    lay in a photo that was straightened (``ml.rectify.Rectification.corners``; None for a scan)."""

    image: Image.Image
    format: str
    page_corners: np.ndarray | None = None
    unreadable: str | None = None  # why a straightened page cannot be read (it is cut, say)


def decode_page(
    data: bytes,
    *,
    min_trace_width: int | None = 2 * INPUT_SIZE,
    max_pixels: int = MAX_PIXELS,
    straighten: bool = True,
) -> DecodedImage:
    """Decode JPEG or PNG ``data``, once, into an upright RGB page.

    With ``min_trace_width``, a JPEG is decoded with Pillow's draft mode at the smallest DCT
    scale that still leaves the trace area at least that many pixels wide along the time axis,
    several times cheaper than a full decode; with None, at full size (the upload path, which
    stores the page). Raises ``InvalidImageError`` with a human reason for empty, unknown,
    animated, truncated, oversized (over ``max_pixels``) or tiny images.

    With ``straighten``, a photographed printout is found in the photo and straightened onto the
    reference page (``ml.rectify``), so every face reads a photo as it reads a scan; a scan, or a
    page straightened before, comes back as it is.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError(f"is not image data (got {type(data).__name__}).")
    if len(data) == 0:
        raise InvalidImageError("is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)), formats=list(ACCEPTED_FORMATS))
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImageError(f"is {width}x{height} pixels; the limit is {max_pixels:,} pixels.")
            if getattr(image, "n_frames", 1) > 1:
                raise InvalidImageError("is an animation; send a single still image.")
            source_format = str(image.format)
            if min_trace_width is not None and source_format == "JPEG":
                left, top, right, bottom = TRACE_BOX_FRACTIONS
                # Request a page size whose trace area is >= min_trace_width wide (time
                # axis) and half that high; draft picks the largest scale that fits.
                wanted = (
                    math.ceil(min_trace_width / (right - left)),
                    math.ceil(min_trace_width / 2 / (bottom - top)),
                )
                # EXIF orientations 5-8 store the page sideways: swap the wanted axes.
                if image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                    wanted = (wanted[1], wanted[0])
                image.draft("RGB", wanted)
            image.load()
            # In place, and converted only when needed: a copy of a full page costs half as much
            # as decoding it, and most pages are upright RGB already.
            ImageOps.exif_transpose(image, in_place=True)
            if image.mode != "RGB":
                image = image.convert("RGB")
    except InvalidImageError:
        raise
    except Image.UnidentifiedImageError:
        raise InvalidImageError("is not a JPEG or PNG image.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own ceiling, checked inside open() before we see the size: far above ours.
        raise InvalidImageError(f"has more than the {max_pixels:,} pixel limit.") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Truncated or corrupt data surfaces as one of these, depending on where it breaks.
        raise InvalidImageError("is damaged or truncated and cannot be read.") from None
    if min(image.size) < MIN_SIDE:
        raise InvalidImageError(
            f"is too small ({image.width}x{image.height} pixels); an ECG page "
            f"needs at least {MIN_SIDE} pixels on each side."
        )
    if not straighten:
        return DecodedImage(image, source_format)
    page = rectify(image)
    return DecodedImage(page.image, source_format, page.corners, page.unreadable)


def decode_image(
    data: bytes,
    *,
    min_trace_width: int | None = 2 * INPUT_SIZE,
    max_pixels: int = MAX_PIXELS,
    straighten: bool = True,
) -> Image.Image:
    """The upright RGB page of ``decode_page``."""
    return decode_page(
        data, min_trace_width=min_trace_width, max_pixels=max_pixels, straighten=straighten
    ).image


def crop_trace_area(image: Image.Image) -> Image.Image:
    """Return the grid box of a 12-lead page, without the printed header and footer.

    The box is a fixed fraction of the page (measured on the 1200x852 khan-ecg scans), so
    it holds for any resolution of the same layout; a photographed page is straightened onto
    that layout first (``decode_page``).
    """
    left, top, right, bottom = TRACE_BOX_FRACTIONS
    width, height = image.size
    box = (
        round(left * width),
        round(top * height),
        round(right * width),
        round(bottom * height),
    )
    return image.crop(box)


def red_channel(image: Image.Image) -> Image.Image:
    """The red channel, where the pink grid vanishes and black ink stays dark (no copy of an
    image that is RGB already)."""
    return image.getchannel("R") if image.mode == "RGB" else image.convert("RGB").getchannel("R")


def preprocess(image: Image.Image) -> np.ndarray:
    """Return the float32 (INPUT_SIZE, INPUT_SIZE, 3) network input for a full page image.

    Values are the red channel scaled by MobileNetV2's ``x / 127.5 - 1``: white paper and
    pink grid near +1, black ink near -1; the three channels are identical.
    """
    red = red_channel(crop_trace_area(image))
    # A 2 px trace on a 1200 px page is under half a pixel at 224: thicken it first (a min
    # filter spreads dark ink) when the image is large enough for that to matter.
    if red.width > 2 * INPUT_SIZE:
        red = Image.fromarray(_thicken_ink(np.asarray(red)))
    red = red.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BOX)
    pixels = np.asarray(red, dtype=np.float32) / 127.5 - 1.0
    return np.repeat(pixels[:, :, np.newaxis], 3, axis=2)


def _thicken_ink(gray: np.ndarray) -> np.ndarray:
    """3x3 minimum filter (dark ink spreads by one pixel); numpy is ~10x faster than
    Pillow's MinFilter here."""
    out = gray.copy()
    np.minimum(out[:, 1:], gray[:, :-1], out=out[:, 1:])
    np.minimum(out[:, :-1], gray[:, 1:], out=out[:, :-1])
    rows = out.copy()
    np.minimum(out[1:, :], rows[:-1, :], out=out[1:, :])
    np.minimum(out[:-1, :], rows[1:, :], out=out[:-1, :])
    return out


def preprocess_bytes(data: bytes) -> np.ndarray:
    """Decode, crop and normalise image ``data``; raises ``InvalidImageError`` if unusable."""
    return preprocess(decode_image(data))
