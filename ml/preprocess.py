"""Turn uploaded image bytes into the network's input array.

Numpy and Pillow only: no TensorFlow here, so web processes can validate uploads cheaply.

Pipeline (``preprocess_bytes``):
1. ``decode_image``: accept JPEG or PNG only, decode JPEGs at a reduced scale (draft mode),
   apply the EXIF orientation, convert to RGB.
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

import numpy as np
from PIL import Image, ImageOps

from ml.layout import TRACE_BOX_FRACTIONS

INPUT_SIZE = 224
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG")
# Anything larger is not a scanned ECG page; refusing early bounds memory per request.
MAX_PIXELS = 50_000_000
# Smaller pages cannot hold readable traces (a small grid square would be under 1 px).
MIN_SIDE = 64
EXIF_ORIENTATION = 0x0112


class InvalidImageError(ValueError):
    """An uploaded file that cannot be used as an ECG image; ``str(error)`` is for users."""


def decode_image(data: bytes, *, min_trace_width: int = 2 * INPUT_SIZE) -> Image.Image:
    """Decode JPEG or PNG ``data`` into an upright RGB image.

    JPEGs are decoded with Pillow's draft mode at the smallest DCT scale that still leaves
    the trace area at least ``min_trace_width`` pixels wide along the time axis (default:
    twice ``INPUT_SIZE``), which is several times cheaper than a full decode. Raises
    ``InvalidImageError`` with a human message for empty, unknown, truncated, oversized or
    tiny images.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError(f"Expected image bytes, got {type(data).__name__}.")
    if len(data) == 0:
        raise InvalidImageError("The file is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)), formats=list(ACCEPTED_FORMATS))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImageError(
                    f"The image is too large ({width}x{height} pixels); "
                    f"at most {MAX_PIXELS:,} pixels are accepted."
                )
            if image.format == "JPEG":
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
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
    except InvalidImageError:
        raise
    except Image.UnidentifiedImageError:
        raise InvalidImageError("The file is not a JPEG or PNG image.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImageError("The image is too large to process.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Truncated or corrupt data surfaces as one of these, depending on where it breaks.
        raise InvalidImageError(f"The image could not be decoded ({error}).") from None
    if min(image.size) < MIN_SIDE:
        raise InvalidImageError(
            f"The image is too small ({image.width}x{image.height} pixels); an ECG page "
            f"needs at least {MIN_SIDE} pixels on each side."
        )
    return image


def crop_trace_area(image: Image.Image) -> Image.Image:
    """Return the grid box of a 12-lead page, without the printed header and footer.

    The box is a fixed fraction of the page (measured on the 1200x852 khan-ecg scans), so
    it holds for any resolution of the same layout; photographed or skewed pages would
    have to be located first, which this function does not do.
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


def preprocess(image: Image.Image) -> np.ndarray:
    """Return the float32 (INPUT_SIZE, INPUT_SIZE, 3) network input for a full page image.

    Values are the red channel scaled by MobileNetV2's ``x / 127.5 - 1``: white paper and
    pink grid near +1, black ink near -1; the three channels are identical.
    """
    trace = crop_trace_area(image)
    red = trace.getchannel("R") if trace.mode == "RGB" else trace.convert("RGB").getchannel("R")
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
