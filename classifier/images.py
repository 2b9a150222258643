"""Checking and re-encoding uploaded images before anything is stored.

Uploaded bytes are never kept as they came: each image is decoded once (ml.preprocess.decode_page:
the formats and the pixel ceiling every face applies), turned upright by its EXIF orientation,
a photographed printout found and straightened (ml.rectify), and written anew without metadata.
With ECGSITE_OOD_GUARD on, an image that does not look like a 12-lead ECG printout, or an ECG that
cannot be read (ml.guard), is refused with the reason.
"""

from __future__ import annotations

import hashlib
import tempfile
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image

from ml import guard
from ml.device import usable_cores
from ml.preprocess import FORMAT_SIGNATURES, InvalidImageError, decode_page

MAX_NAME_LENGTH = 255
# How an accepted file begins: the API refuses others (415) before reading them.
IMAGE_SIGNATURES = tuple(FORMAT_SIGNATURES.values())


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
    photographed: bool = False  # found in a photo and straightened (ml.rectify)


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
        # The one decode of this upload: the guard and the re-encode both read this page.
        decoded = decode_page(data, min_trace_width=None, max_pixels=settings.ECGSITE_MAX_IMAGE_PIXELS)
    except InvalidImageError as exc:
        raise InvalidUpload(display_name, exc.reason) from None
    image = decoded.image  # a photographed printout is stored straightened (ml.rectify)
    if settings.ECGSITE_OOD_GUARD:
        rejection = guard.check_decoded(decoded)
        if rejection is not None:
            raise InvalidUpload(display_name, rejection.after_name)

    # Nothing of the upload's metadata travels on: no EXIF, ICC profile, comments or text chunks.
    image.info.clear()
    if decoded.format == "PNG":
        content = _encoded(image, format="PNG", compress_level=3)  # level 6: 40% more time, 25% less disk
        extension = ".png"
    else:
        content = _encoded(image, format="JPEG", quality=92)
        extension = ".jpg"
    return CleanImage(
        original_name=display_name,
        content=content,
        extension=extension,
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
        photographed=decoded.page_corners is not None,
    )


def _encoded(image: Image.Image, **params: Any) -> bytes:
    # Through a real file, not BytesIO: Pillow's encoder lets go of the GIL only while it writes
    # to a file descriptor, so only then do the cleaning threads encode side by side.
    with tempfile.TemporaryFile() as out:
        image.save(out, **params)
        out.seek(0)
        return out.read()


# Threads that clean one upload's images side by side: Pillow and numpy let go of the GIL while
# they decode, measure and encode, so the cores share the work of a large batch.
CLEANING_THREADS = min(4, usable_cores())


def clean_images(uploads: Sequence[UploadedFile]) -> list[CleanImage | InvalidUpload]:
    """``clean_image`` for each upload, in order, on a few threads: the cleaned image, or why it
    was refused."""

    def clean(upload: UploadedFile) -> CleanImage | InvalidUpload:
        try:
            return clean_image(upload, name=upload.name or "", size=upload.size)
        except InvalidUpload as refused:
            return refused

    if len(uploads) < 2 or CLEANING_THREADS < 2:
        return [clean(upload) for upload in uploads]
    with ThreadPoolExecutor(max_workers=CLEANING_THREADS, thread_name_prefix="upload-cleaner") as pool:
        return list(pool.map(clean, uploads))
