"""classifier.images: names from clients are cleaned, images are decoded with limits and re-encoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from classifier.images import MAX_NAME_LENGTH, InvalidUpload, clean_file_name, clean_image, megabytes
from ml import guard
from ml.preprocess import decode_page
from tests.conftest import render_ecg_bytes, render_non_ecg_bytes, render_photo_bytes


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("/var/www/ecg.jpg", "ecg.jpg"),
        ("..\\..\\Windows\\ecg.png", "ecg.png"),
        ("C:\\Users\\ana\\Desktop\\ecg.jpg", "ecg.jpg"),
    ],
    ids=["posix traversal", "posix absolute", "windows traversal", "windows absolute"],
)
def test_a_name_with_a_path_keeps_only_its_last_component(raw, cleaned):
    assert clean_file_name(raw) == cleaned


def test_control_characters_are_removed_from_a_name():
    assert clean_file_name("e\x1bc\x00g\r\n\u200b\u202e.png") == "ecg.png"


def test_a_300_character_name_is_cut_to_255_keeping_its_extension():
    cleaned = clean_file_name("a" * 296 + ".png")

    assert len(cleaned) == MAX_NAME_LENGTH
    assert cleaned == "a" * (MAX_NAME_LENGTH - 4) + ".png"


def test_a_300_character_name_without_extension_is_cut_to_255():
    assert clean_file_name("b" * 300) == "b" * MAX_NAME_LENGTH


@pytest.mark.parametrize("raw", ["", "\x00\x01", "   "])
def test_a_name_with_nothing_left_becomes_unnamed(raw):
    assert clean_file_name(raw) == "unnamed"


def test_clean_image_names_the_file_by_its_cleaned_name_when_it_refuses_it():
    with pytest.raises(InvalidUpload) as caught:
        clean_image(io.BytesIO(b""), name="../secret/\x07empty.png")

    assert str(caught.value) == "empty.png: is empty."
    assert (caught.value.name, caught.value.reason) == ("empty.png", "is empty.")


def test_clean_image_refuses_by_declared_size_before_reading(settings):
    settings.ECGSITE_MAX_UPLOAD_BYTES = 2 * 1024 * 1024

    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("read although the declared size is over the limit")

    with pytest.raises(InvalidUpload, match="larger than the 2 MB limit"):
        clean_image(Unreadable(), name="big.png", size=3 * 1024 * 1024)


def test_clean_image_refuses_an_animated_png():
    frames = [Image.new("RGB", (40, 30), color) for color in ("white", "black")]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])

    with pytest.raises(InvalidUpload, match="is an animation"):
        clean_image(io.BytesIO(out.getvalue()), name="anim.png")


def test_clean_image_keeps_png_as_png_and_everything_else_as_jpeg():
    png = clean_image(io.BytesIO(render_ecg_bytes(image_format="PNG")), name="a.png")
    jpeg = clean_image(
        io.BytesIO(render_ecg_bytes(image_format="JPEG")), name="b.png"
    )  # the name does not decide

    assert (png.extension, Image.open(io.BytesIO(png.content)).format) == (".png", "PNG")
    assert (jpeg.extension, Image.open(io.BytesIO(jpeg.content)).format) == (".jpg", "JPEG")


def test_clean_image_converts_to_rgb():
    grey_with_alpha = render_ecg_bytes(image_format="PNG", mode="LA")

    cleaned = clean_image(io.BytesIO(grey_with_alpha), name="la.png")

    assert Image.open(io.BytesIO(cleaned.content)).mode == "RGB"


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (20 * 1024 * 1024, "20 MB"),
        (512 * 1024, "0.5 MB"),
        (1536 * 1024, "1.5 MB"),
        (60 * 1024 * 1024, "60 MB"),
    ],
)
def test_size_limits_read_as_people_write_them(size, shown):
    assert megabytes(size) == shown


@pytest.mark.parametrize("raw", ["..", "../", "..\\\\", "..."])
def test_a_name_of_only_dots_becomes_unnamed(raw):
    assert clean_file_name(raw) == "unnamed"


def test_clean_image_refuses_an_image_that_is_not_an_ecg_printout_with_the_reason(settings):
    settings.ECGSITE_OOD_GUARD = True

    with pytest.raises(InvalidUpload) as caught:
        clean_image(io.BytesIO(render_non_ecg_bytes("letterhead")), name="letter.png")

    assert caught.value.name == "letter.png"
    assert caught.value.reason.startswith("does not look like a 12-lead ECG printout: no ECG grid was found")


def test_clean_image_stores_a_photographed_printout_straightened(settings):
    settings.ECGSITE_OOD_GUARD = True
    photo = render_photo_bytes("history_mi", 2)
    assert Image.open(io.BytesIO(photo)).size != (1200, 852)

    cleaned = clean_image(io.BytesIO(photo), name="phone.jpg")

    stored = Image.open(io.BytesIO(cleaned.content))
    assert (cleaned.width, cleaned.height) == stored.size == (1200, 852)
    assert (stored.format, cleaned.extension) == ("JPEG", ".jpg")
    assert cleaned.photographed is True  # the job remembers it, for the model's photo rule
    # What is stored is the page: read again, it is not looked for a second time.
    assert decode_page(cleaned.content).page_corners is None
    assert guard.check_page(stored.convert("RGB")) is None


def test_clean_image_refuses_a_photo_cut_through_the_traces_as_an_ecg_it_cannot_read(settings):
    settings.ECGSITE_OOD_GUARD = True

    with pytest.raises(InvalidUpload) as caught:
        clean_image(io.BytesIO(render_photo_bytes("normal", 3, keep=0.7)), name="cut.jpg")

    assert caught.value.reason.startswith(
        "looks like a 12-lead ECG, but it cannot be read: the photo cuts off the right of the page"
    )
    assert "whole page in the frame" in caught.value.reason


@pytest.mark.parametrize("guard", [True, False])
def test_clean_image_refuses_an_image_too_small_for_the_classifier(settings, guard):
    settings.ECGSITE_OOD_GUARD = guard

    tiny = io.BytesIO()
    Image.new("RGB", (56, 40), "white").save(tiny, format="PNG")

    with pytest.raises(
        InvalidUpload, match=r"^tiny.png: is too small \(56x40 pixels\); an ECG page needs at least 64"
    ):
        clean_image(io.BytesIO(tiny.getvalue()), name="tiny.png")


def test_clean_image_lets_any_image_through_with_the_guard_off(settings):
    settings.ECGSITE_OOD_GUARD = False

    cleaned = clean_image(io.BytesIO(render_non_ecg_bytes("letterhead")), name="letter.png")

    assert cleaned.extension == ".png"


def test_clean_images_cleans_each_upload_in_order_on_several_threads(monkeypatch, make_upload, ecg_jpeg):
    import threading

    from classifier import images

    threads: set[str] = set()
    real_clean = images.clean_image

    def clean_and_note(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return real_clean(*args, **kwargs)

    monkeypatch.setattr(images, "CLEANING_THREADS", 2)
    monkeypatch.setattr(images, "clean_image", clean_and_note)
    uploads = [make_upload("a.png"), make_upload("b.png", b"not an image"), make_upload("c.jpg", ecg_jpeg)]

    outcomes = images.clean_images(uploads)

    assert [type(outcome).__name__ for outcome in outcomes] == ["CleanImage", "InvalidUpload", "CleanImage"]
    assert [outcome.original_name for outcome in outcomes[::2]] == ["a.png", "c.jpg"]
    assert str(outcomes[1]) == "b.png: is not a JPEG or PNG image."
    assert all(name.startswith("upload-cleaner") for name in threads)
