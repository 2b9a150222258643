"""Checking and re-encoding uploaded images before anything is stored.

Uploaded bytes are never kept as they came: each image is decoded with a pixel ceiling, turned
upright by its EXIF orientation, and written anew without metadata. With ECGSITE_OOD_GUARD on,
an image that does not look like a 12-lead ECG printout (ml.guard) is refused with the reason.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import IO

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from ml import guard
from ml.preprocess import InvalidImageError

ACCEPTED_FORMATS = ("JPEG", "PNG")
MAX_NAME_LENGTH = 255


class InvalidUpload(ValueError):
    """An upload we refuse, with a message meant for the person who sent it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class CleanImage:
    """A decoded, re-encoded image ready to store."""

    original_name: str
    content: bytes
    extension: str  # ".jpg" or ".png"
    sha256: str  # of the bytes the user sent, to recognise repeated uploads
    width: int
    height: int


def megabytes(size: int) -> str:
    """A byte count as people read it: "20 MB", "0.5 MB"."""
    value = size / (1024 * 1024)
    return f"{value:.0f} MB" if value >= 10 or value.is_integer() else f"{value:.1f} MB"


def clean_file_name(raw: str) -> str:
    """The last path component of a client-given name, without control characters, bounded."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        keep = MAX_NAME_LENGTH - len(ext) - 1 if dot and len(ext) <= 10 else MAX_NAME_LENGTH
        name = f"{stem[:keep]}.{ext}" if dot and len(ext) <= 10 else name[:MAX_NAME_LENGTH]
    return name if name.strip(".") else "unnamed"


def clean_image(stream: IO[bytes], *, name: str, size: int | None = None) -> CleanImage:
    """Validate one uploaded image and re-encode it; raise InvalidUpload with a human reason."""
    display_name = clean_file_name(name)
    max_bytes = settings.ECGSITE_MAX_UPLOAD_BYTES
    too_large = f"is larger than the {megabytes(max_bytes)} limit."
    if size is not None and size > max_bytes:
        raise InvalidUpload(display_name, too_large)
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidUpload(display_name, too_large)
    if not data:
        raise InvalidUpload(display_name, "is empty.")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            pixels = image.width * image.height
            if pixels > settings.ECGSITE_MAX_IMAGE_PIXELS:
                raise InvalidUpload(
                    display_name,
                    f"is {image.width}x{image.height} pixels; the limit is "
                    f"{settings.ECGSITE_MAX_IMAGE_PIXELS:,} pixels.",
                )
            if getattr(image, "n_frames", 1) > 1:
                raise InvalidUpload(display_name, "is an animation; send a single still image.")
            image.load()
            source_format = image.format
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
    except InvalidUpload:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own ceiling, checked inside open() before we see the size: far above ours.
        raise InvalidUpload(
            display_name, f"has more than the {settings.ECGSITE_MAX_IMAGE_PIXELS:,} pixel limit."
        ) from None
    except UnidentifiedImageError:
        raise InvalidUpload(display_name, "is not a JPEG or PNG image.") from None
    except (OSError, SyntaxError, ValueError):
        raise InvalidUpload(display_name, "is damaged or truncated and cannot be read.") from None

    if settings.ECGSITE_OOD_GUARD:
        _check_looks_like_ecg(data, display_name)

    # Nothing of the upload's metadata travels on: no EXIF, ICC profile, comments or text chunks.
    image.info.clear()
    out = io.BytesIO()
    if source_format == "PNG":
        image.save(out, format="PNG", compress_level=3)  # level 6 costs 40% more time for 25% less disk
        extension = ".png"
    else:
        image.save(out, format="JPEG", quality=92)
        extension = ".jpg"
    return CleanImage(
        original_name=display_name,
        content=out.getvalue(),
        extension=extension,
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
    )


def _check_looks_like_ecg(data: bytes, display_name: str) -> None:
    """Raise InvalidUpload unless ml.guard takes the bytes for a 12-lead ECG printout.

    The guard decodes the bytes as the classifier will, so it judges what the classifier sees.
    """
    try:
        rejection = guard.check_bytes(data)
    except InvalidImageError as exc:  # e.g. too small for the classifier to use
        message = str(exc)
        raise InvalidUpload(display_name, message[:1].lower() + message[1:]) from None
    if rejection is not None:
        raise InvalidUpload(display_name, f"does not look like a 12-lead ECG printout: {rejection.reason}.")
