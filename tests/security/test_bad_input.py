"""Bad input through both doors: the web form (`/upload/`) and the API (`POST /api/v1/batches/`).

Every case gets a 4xx with a message a person can act on, and leaves nothing behind: no Batch or
Job row, no file under MEDIA_ROOT, no temporary upload file. What is accepted is stored under a
random name, upright, and re-encoded without the upload's metadata.

`bad_file(case)` builds each file; the same bytes go through both doors. Lower-level checks of
`clean_image` and `clean_file_name` are in tests/classifier/test_images.py; web-form messages and
settings-driven limits in tests/classifier/test_upload.py; API status mapping (413/415) in
tests/api/test_batches.py.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from django.test import Client
from PIL import Image, ImageCms, PngImagePlugin

from classifier.models import AuditEvent, Batch, Job
from ml.guard import REASONS
from tests.conftest import TEST_PAGE_SIZE, render_ecg_bytes, render_non_ecg_bytes, stored_files
from tests.security.conftest import API_UPLOAD, MULTIPART, WEB_UPLOAD, Part, multipart_body

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
STORED_NAME = re.compile(r"jobs/\d{4}/\d\d/[0-9a-f]{32}\.(png|jpg)")


# --- Building the files -------------------------------------------------------------------------


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def noise(size: tuple[int, int] = (200, 150)) -> Image.Image:
    pixels = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int) -> bytes:
    """A real side x side PNG, 1 bit per pixel and all black: tens of KB on disk, and
    side² pixels (RGB: 3·side² bytes) once decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "white"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def animated(image_format: str) -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("white", "black", "red")]
    return encode(frames[0], image_format, save_all=True, append_images=frames[1:], duration=100)


SCRIPT = b"<script>alert(document.cookie)</script>"


def bad_file(case: str) -> Part:
    """The file for one case of the matrix, as a client would send it."""
    builders: dict[str, Callable[[], Part]] = {
        "empty file": lambda: Part("empty.png", b"", "image/png"),
        "truncated JPEG": lambda: Part("half.jpg", encode(noise(), "JPEG")[:3000], "image/jpeg"),
        "text renamed .jpg": lambda: Part("notes.jpg", b"Patient notes, not an image.\n" * 20, "image/jpeg"),
        "PDF": lambda: Part(
            "scan.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "application/pdf"
        ),
        "SVG": lambda: Part(
            "ecg.svg", b'<svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>", "image/svg+xml"
        ),
        "HTML": lambda: Part(
            "ecg.html", b"<!doctype html><html><body>" + SCRIPT + b"</body></html>", "text/html"
        ),
        "HTML named .png": lambda: Part("ecg.png", b"<html>" + SCRIPT + b"</html>", "image/png"),
        "20000x20000 PNG bomb": lambda: Part("bomb.png", png_bomb(20_000), "image/png"),
        "JPEG claiming 20000x20000": lambda: Part("bomb.jpg", jpeg_claiming(20_000, 20_000), "image/jpeg"),
        "8000x8000 PNG over our ceiling": lambda: Part("big.png", png_bomb(8_000), "image/png"),
        "animated GIF": lambda: Part("anim.gif", animated("GIF"), "image/gif"),
        "animated PNG": lambda: Part("anim.png", animated("PNG"), "image/png"),
        "60 MB file": lambda: Part("huge.jpg", b"\xff\xd8\xff\xe0" + bytes(60 * MB), "image/jpeg"),
        # Valid images that are not 12-lead ECG printouts (ml.nonecg), refused by the guard (ml.guard).
        "photo": lambda: Part("holiday.jpg", render_non_ecg_bytes("photo", 1, "JPEG"), "image/jpeg"),
        "page of text": lambda: Part("letter.png", render_non_ecg_bytes("letterhead", 0, "PNG"), "image/png"),
        "blank page": lambda: Part("blank.jpg", render_non_ecg_bytes("blank_page", 7, "JPEG"), "image/jpeg"),
        "screenshot": lambda: Part("screen.png", render_non_ecg_bytes("screenshot", 1, "PNG"), "image/png"),
    }
    return builders[case]()


NOT_ECG = "does not look like a 12-lead ECG printout"

# case → (message the web form shows, API status, words the API's problem detail holds)
REFUSED = {
    "empty file": ("empty.png: is empty.", 400, "empty"),
    "truncated JPEG": ("half.jpg: is damaged or truncated and cannot be read.", 400, "half.jpg: is damaged"),
    "text renamed .jpg": ("notes.jpg: is not a JPEG or PNG image.", 415, "notes.jpg: is not a JPEG or PNG"),
    "PDF": ("scan.pdf: is not a JPEG or PNG image.", 415, "scan.pdf: is not a JPEG or PNG"),
    "SVG": ("ecg.svg: is not a JPEG or PNG image.", 415, "ecg.svg: is not a JPEG or PNG"),
    "HTML": ("ecg.html: is not a JPEG or PNG image.", 415, "ecg.html: is not a JPEG or PNG"),
    "HTML named .png": ("ecg.png: is not a JPEG or PNG image.", 415, "ecg.png: is not a JPEG or PNG"),
    "20000x20000 PNG bomb": ("bomb.png: has more than the 40,000,000 pixel limit.", 400, "40,000,000 pixel"),
    "JPEG claiming 20000x20000": (
        "bomb.jpg: has more than the 40,000,000 pixel limit.",
        400,
        "40,000,000 pixel",
    ),
    "8000x8000 PNG over our ceiling": (
        "big.png: is 8000x8000 pixels; the limit is 40,000,000 pixels.",
        400,
        "8000x8000 pixels",
    ),
    "animated GIF": ("anim.gif: is not a JPEG or PNG image.", 415, "anim.gif: is not a JPEG or PNG"),
    "animated PNG": ("anim.png: is an animation; send a single still image.", 400, "is an animation"),
    "60 MB file": ("huge.jpg: is larger than the 20 MB limit.", 413, "huge.jpg: is larger than the 20 MB"),
    "photo": (f"holiday.jpg: {NOT_ECG}: {REASONS['not_paper']}.", 400, f"holiday.jpg: {NOT_ECG}"),
    "page of text": (f"letter.png: {NOT_ECG}: {REASONS['no_grid']}.", 400, f"letter.png: {NOT_ECG}"),
    "blank page": (f"blank.jpg: {NOT_ECG}: {REASONS['blank']}.", 400, f"blank.jpg: {NOT_ECG}"),
    "screenshot": (f"screen.png: {NOT_ECG}: {REASONS['no_grid']}.", 400, f"screen.png: {NOT_ECG}"),
}


def post_web(client: Client, parts: list[Part]) -> object:
    return client.post(
        WEB_UPLOAD, multipart_body(parts), content_type=MULTIPART, headers={"accept": "application/json"}
    )


def post_api(client: Client, parts: list[Part]) -> object:
    return client.post(API_UPLOAD, multipart_body(parts), content_type=MULTIPART)


def assert_nothing_left(media_root, upload_temp_dir) -> None:
    assert Batch.objects.count() == 0
    assert Job.objects.count() == 0
    assert stored_files(media_root) == []
    assert stored_files(upload_temp_dir) == []


def problem(response) -> dict:
    assert response["Content-Type"].startswith("application/problem+json")
    return json.loads(response.content)


# --- Refused: a 4xx with a human message, nothing left behind ----------------------------------


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_web_form_refuses_it_with_a_message_and_leaves_nothing(
    case, owner_client, media_root, upload_temp_dir, enqueue
):
    message, _status, _words = REFUSED[case]

    response = post_web(owner_client, [bad_file(case)])

    assert response.status_code == 400
    assert response.json() == {"errors": [message]}
    assert_nothing_left(media_root, upload_temp_dir)
    enqueue.assert_not_called()


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_api_refuses_it_with_a_problem_and_leaves_nothing(
    case, owner_api, media_root, upload_temp_dir, enqueue
):
    _message, status, words = REFUSED[case]

    response = post_api(owner_api, [bad_file(case)])

    assert response.status_code == status
    body = problem(response)
    assert body["status"] == status
    assert words in body["detail"]
    assert_nothing_left(media_root, upload_temp_dir)
    enqueue.assert_not_called()


def test_the_bombs_are_small_on_disk_but_claim_a_huge_size(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # only to read the header here
    for case, side, most_bytes in [
        ("20000x20000 PNG bomb", 20_000, 200_000),
        ("JPEG claiming 20000x20000", 20_000, 2_000),
        ("8000x8000 PNG over our ceiling", 8_000, 50_000),
    ]:
        content = bad_file(case).content
        assert len(content) < most_bytes
        with Image.open(io.BytesIO(content)) as image:
            assert image.size == (side, side)


# --- Too many files -----------------------------------------------------------------------------


def tiny_pngs(count: int) -> list[Part]:
    png = encode(Image.new("RGB", (2, 2), "white"), "PNG")
    return [Part(f"{n}.png", png, "image/png") for n in range(count)]


def test_500_files_in_one_web_upload_get_our_message(owner_client, media_root, upload_temp_dir, enqueue):
    response = post_web(owner_client, tiny_pngs(500))

    assert response.status_code == 400
    assert response.json() == {"errors": ["500 files were sent; a batch holds at most 200."]}
    assert_nothing_left(media_root, upload_temp_dir)


def test_500_files_in_one_api_upload_get_our_message(owner_api, media_root, upload_temp_dir, enqueue):
    response = post_api(owner_api, tiny_pngs(500))

    assert response.status_code == 400
    assert problem(response)["detail"] == "500 files were sent; a batch holds at most 200."
    assert_nothing_left(media_root, upload_temp_dir)


def test_more_files_than_django_parses_get_our_message_on_the_web_form(
    owner_client, media_root, upload_temp_dir, settings, enqueue
):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 10  # Django refuses to parse more than this

    response = post_web(owner_client, tiny_pngs(11))

    assert response.status_code == 400
    assert response.json() == {
        "errors": ["Too many files were sent in one request; a batch holds at most 200."]
    }
    assert_nothing_left(media_root, upload_temp_dir)


def test_more_files_than_django_parses_get_a_problem_from_the_api(
    owner_api, media_root, upload_temp_dir, settings, enqueue
):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 10

    response = post_api(owner_api, tiny_pngs(11))

    assert response.status_code == 400
    body = problem(response)
    assert body["type"] == "urn:ecgsite:problem:too-many-files"
    assert "a batch holds at most 200" in body["detail"]
    assert_nothing_left(media_root, upload_temp_dir)


def test_the_refused_form_page_shows_too_many_files_as_a_message(owner_client, settings, enqueue):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 10

    response = owner_client.post(WEB_UPLOAD, multipart_body(tiny_pngs(11)), content_type=MULTIPART)

    assert response.status_code == 400
    assert (
        "<li>Too many files were sent in one request; a batch holds at most 200.</li>"
        in response.content.decode()
    )


# --- Accepted: hostile names are cleaned; the stored file never uses the client's name ---------


def ecg_like_png() -> bytes:
    return render_ecg_bytes(image_format="PNG")


HOSTILE_NAMES = {
    "unix path traversal": ("../../../etc/cron.d/ecg.png", "ecg.png"),
    "windows path traversal": ("..\\..\\Windows\\System32\\ecg.png", "ecg.png"),
    "escaped path traversal": ("&#46;&#46;&#47;&#46;&#46;&#47;ecg.png", "ecg.png"),
    "control characters": ("scan\x01\x08\x1b[31m\x7f.png", "scan[31m.png"),
    "300 characters": ("a" * 296 + ".png", "a" * 251 + ".png"),
}

DOORS = {
    "web form": (lambda request: request.getfixturevalue("owner_client"), post_web),
    "API": (lambda request: request.getfixturevalue("owner_api"), post_api),
}


@pytest.fixture(params=list(DOORS))
def door(request) -> Callable[[list[Part]], object]:
    """Posts files through the web form or the API, as alice."""
    make_client, post = DOORS[request.param]
    client = make_client(request)
    return lambda parts: post(client, parts)


@pytest.mark.parametrize("case", list(HOSTILE_NAMES))
def test_a_hostile_file_name_is_kept_only_as_a_cleaned_label(
    case, door, media_root, upload_temp_dir, enqueue
):
    sent, kept = HOSTILE_NAMES[case]

    response = door([Part(sent, ecg_like_png(), "image/png")])

    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert job.original_name == kept
    assert STORED_NAME.fullmatch(job.image.name)
    assert [path.relative_to(media_root).as_posix() for path in stored_files(media_root)] == [job.image.name]
    assert stored_files(upload_temp_dir) == []


def test_a_jpeg_with_exif_orientation_is_accepted_and_stored_upright(door, media_root, enqueue):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise: the sensor stored the landscape page on its side
    upload = render_ecg_bytes(image_format="JPEG", transpose=Image.Transpose.ROTATE_90, exif=exif.tobytes())
    width, height = TEST_PAGE_SIZE

    response = door([Part("phone.jpg", upload, "image/jpeg")])

    assert response.status_code == 201
    job = Job.objects.get()
    assert (job.width, job.height) == (width, height)
    with job.image.open("rb") as stored, Image.open(stored) as kept:
        assert kept.size == (width, height)
        assert 0x0112 not in kept.getexif()


# --- Accepted: stored bytes are re-encoded, without the upload's metadata ----------------------


def jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Scanner Maker"  # Make
    exif[0x0131] = "Hospital PACS <b>1.0</b>"  # Software
    exif[0x013B] = "Dr. John Doe"  # Artist
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return render_ecg_bytes(
        image_format="JPEG", exif=exif.tobytes(), icc_profile=icc, comment=SCRIPT, dpi=(300, 300)
    )


def png_with_metadata() -> bytes:
    """A valid PNG carrying HTML in text chunks and after its end: a polyglot."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SCRIPT.decode())
    info.add_itxt("Description", "<iframe src=//evil>", zip=True)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return (
        render_ecg_bytes(image_format="PNG", pnginfo=info, icc_profile=icc) + b"<html>" + SCRIPT + b"</html>"
    )


@pytest.mark.parametrize(
    ("name", "build", "stored_format"),
    [("scan.jpg", jpeg_with_metadata, "JPEG"), ("scan.png", png_with_metadata, "PNG")],
    ids=["JPEG with EXIF, ICC and comment", "PNG with text chunks, ICC and trailing HTML"],
)
def test_the_stored_image_is_re_encoded_without_any_metadata(
    door, media_root, enqueue, name, build, stored_format
):
    upload = build()

    response = door([Part(name, upload, "image/" + stored_format.lower())])

    assert response.status_code == 201
    with Job.objects.get().image.open("rb") as stored:
        kept = stored.read()
    assert kept != upload
    assert b"<script" not in kept
    assert b"<iframe" not in kept
    assert b"<html" not in kept
    with Image.open(io.BytesIO(kept)) as image:
        assert image.format == stored_format
        assert dict(image.getexif()) == {}
        assert not {"exif", "icc_profile", "comment", "Comment", "Description", "dpi"} & set(image.info)
        if stored_format == "PNG":
            assert image.text == {}  # type: ignore[attr-defined]


def test_a_refused_upload_is_recorded_in_the_audit_log_without_its_bytes(owner_api, media_root, enqueue):
    post_api(owner_api, [bad_file("HTML named .png")])

    event = AuditEvent.objects.get(action="batch.create")
    assert event.outcome == "refused"
    assert "script" not in json.dumps(event.detail)
