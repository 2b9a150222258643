"""A user's whole visit in headless Chromium against the real server (embedded default).

Sign up through the allauth form, upload three synthetic ECG pages through the upload page's
script, land on the batch page and watch the three results arrive over the websocket, with
no reload, each with its twelve leads redrawn by the server and a table of what was measured on
them, each saying which lead and seconds drove it and showing that over the page on request, each
with a PDF report that downloads and opens, and the batch's report, then the completion toast.
And a phone photo of a printout, uploaded the same way.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from classifier.models import Label
from tests.conftest import render_photo_bytes
from tests.e2e.client import PASSWORD, SiteClient, confirmation_path, render_ecg_png, unique_email
from tests.e2e.livestack import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The first classification imports TensorFlow and loads the model on CPU inside daphne.
RESULTS_TIMEOUT_MS = 180_000
PAGE_TIMEOUT_MS = 30_000
IMAGES = [("normal", 11), ("mi", 12), ("abnormal", 13)]
LABEL_NAMES = {label.label for label in Label}
LEAD = r"(I|II|III|aVR|aVL|aVF|V[1-6])"
REGION = rf"({LEAD}(–{LEAD})?|II \(rhythm strip\))"
EXPLANATION = rf"Most weight on {REGION}, \d+\.\d–\d+\.\d s \(\d+% of the total\)\."

# Run on the batch page as soon as it has loaded: a marker on this document (a reload or a
# navigation would lose it), and a record of every toast, which fades away after 8 s.
MARK_DOCUMENT = """() => {
  window.__e2eDocument = "batch page, before any live result";
  window.__e2eToasts = [];
  new MutationObserver(() => {
    document.querySelectorAll("#toasts .toast").forEach((toast) => {
      if (!window.__e2eToasts.includes(toast.textContent)) window.__e2eToasts.push(toast.textContent);
    });
  }).observe(document.getElementById("toasts"), { childList: true, subtree: true });
  return Number(document.getElementById("batch-progress").dataset.done);
}"""

READ_CARDS = """() => Array.from(document.querySelectorAll("#jobs article.job")).map((card) => ({
  status: card.dataset.status,
  name: card.querySelector(".job-name").textContent,
  label: card.querySelector(".job-label") ? card.querySelector(".job-label").textContent : null,
  note: card.querySelector(".label-note") ? card.querySelector(".label-note").textContent : null,
  signal: card.querySelector("img.signal-image")
    ? card.querySelector("img.signal-image").getAttribute("src") : null,
  csv: card.querySelector("a.signal-csv") ? card.querySelector("a.signal-csv").getAttribute("href") : null,
  measurements: card.querySelector("table.measurements") ? {
    caption: card.querySelector("table.measurements caption").textContent,
    rows: Object.fromEntries(Array.from(card.querySelectorAll("table.measurements tr")).map((row) => [
      row.dataset.measure, [row.querySelector("th").textContent, row.querySelector("td").textContent],
    ])),
  } : null,
  bars: Array.from(card.querySelectorAll(".prob-row")).map((row) => ({
    cls: row.dataset.class,
    value: parseFloat(row.querySelector(".prob-value").textContent),
    width: parseFloat(row.querySelector(".prob-fill").style.width),
  })),
}))"""


def _pdf_text(path: Path) -> tuple[int, str]:
    """A downloaded PDF opened as a reader would: its page count and its text."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    return len(reader.pages), re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in reader.pages))


def _screenshot_failure(page: object, tmp_path: Path) -> None:
    page.screenshot(path=tmp_path / "failure.png", full_page=True)  # type: ignore[attr-defined]
    print(f"screenshot at the failure: {tmp_path / 'failure.png'}")


def test_a_new_user_signs_up_uploads_three_images_and_sees_the_results_arrive_live(
    live_stack: LiveStack, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    context = browser.new_context(base_url=live_stack.base_url, viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        # 1. Sign up through the allauth form, then follow the link mailed to the address: that
        #    confirms it, signs the new user in and opens /upload/.
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        page.goto("/accounts/signup/")
        page.fill("#id_email", email)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("form[action='/accounts/signup/'] button[type=submit]")
        page.wait_for_url("**/accounts/confirm-email/")
        page.goto(confirmation_path(live_stack.mail_dir, email))
        page.click("form[action^='/accounts/confirm-email/'] button[type=submit]")
        page.wait_for_url("**/upload/")
        expect(page.locator(".topbar .who")).to_have_text(email)

        # 2. Choose three synthetic pages and submit; the script posts them and opens the batch.
        page.set_input_files(
            "#images",
            files=[
                {
                    "name": f"{label}-{seed}.png",
                    "mimeType": "image/png",
                    "buffer": render_ecg_png(label, seed),
                }
                for label, seed in IMAGES
            ],
        )
        expect(page.locator("#chosen")).to_have_text("3 files chosen")
        page.click("#upload-button")
        page.wait_for_url(re.compile(r"/batches/\d+/$"))

        # 3. Mark this document and count navigations from here on.
        navigations: list[str] = []
        page.on(
            "framenavigated",
            lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
        )
        done_on_arrival = page.evaluate(MARK_DOCUMENT)
        assert done_on_arrival < 3, (
            "all three results were already on the page when it loaded, so this run cannot show "
            "that they arrive live"
        )
        expect(page.locator("#jobs article.job")).to_have_count(3)

        # 4. The results arrive over the websocket.
        progress = page.locator("#batch-progress")
        expect(progress).to_have_attribute("data-done", "3", timeout=RESULTS_TIMEOUT_MS)
        expect(progress.locator(".progress-label")).to_have_text("3 of 3 done")
        assert progress.locator(".bar").evaluate("bar => bar.style.width") == "100%"
        expect(page.locator("#batch-status")).to_have_text("Complete.")

        cards = page.evaluate(READ_CARDS)
        assert sorted(card["name"] for card in cards) == sorted(
            f"{label}-{seed}.png" for label, seed in IMAGES
        )
        for card in cards:
            assert card["status"] == "succeeded", card
            assert card["label"] in LABEL_NAMES, card
            # A label that is not the tallest bar (the model's MI threshold made it) says why.
            label_key = next(label.value for label in Label if label.label == card["label"])
            tallest = max(card["bars"], key=lambda bar: bar["value"])["cls"]
            assert (card["note"] is not None) == (label_key != tallest), card
            assert [bar["cls"] for bar in card["bars"]] == ["normal", "mi", "history_mi", "abnormal"], card
            # Each bar shows its percentage (one decimal) and is drawn that wide.
            assert sum(bar["value"] for bar in card["bars"]) == pytest.approx(100, abs=0.3), card
            assert all(bar["width"] == pytest.approx(bar["value"], abs=0.05) for bar in card["bars"]), card
            # The twelve leads the worker digitised, drawn by the server, with the data beside them.
            assert re.fullmatch(r"/jobs/\d+/signal\.svg", card["signal"] or ""), card
            assert re.fullmatch(r"/api/v1/jobs/\d+/signal\.csv", card["csv"] or ""), card
            # Under the drawing, the measurements read from those leads, flagged as no clinical ones.
            measured = card["measurements"]
            assert measured is not None, card
            assert "not a clinical measurement" in measured["caption"], card
            assert list(measured["rows"]) == [
                "heart_rate_bpm",
                "pr_ms",
                "qrs_ms",
                "qt_ms",
                "qtc_ms",
                "st_mv",
                "q_waves",
            ], card
            heading, heart_rate = measured["rows"]["heart_rate_bpm"]
            assert heading == "Heart rate (bpm)" and 30 <= int(heart_rate) <= 200, card
            assert measured["rows"]["qtc_ms"][0] == "QTc (Bazett) (ms)", card

        # 4b. Each drawing loads (same origin, allowed by the page's CSP) as an image with its leads.
        drawings = page.locator("#jobs img.signal-image")
        expect(drawings).to_have_count(3)
        for index in range(3):
            drawing = drawings.nth(index)
            drawing.scroll_into_view_if_needed()  # lazily loaded
            page.wait_for_function(
                "(img) => img.complete && img.naturalWidth > 0", arg=drawing.element_handle()
            )
        svg = page.request.get(cards[0]["signal"])
        assert svg.ok and svg.headers["content-type"] == "image/svg+xml"
        assert svg.text().count("<polyline") == 13
        csv_lines = page.request.get(cards[0]["csv"]).text().splitlines()
        assert csv_lines[0] == "t_s,I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6,II_rhythm"
        assert len(csv_lines) == 1025

        # 4c. Each result says which lead and seconds drove it; the first shows its overlay.
        sentences = page.locator("#jobs .explanation-text")
        expect(sentences).to_have_count(3)
        for index in range(3):
            assert re.fullmatch(EXPLANATION, sentences.nth(index).text_content() or ""), index
        first = page.locator("#jobs article.job").first
        overlay = first.locator("img.explanation-overlay")
        expect(overlay).to_be_hidden()
        first.locator(".explanation-toggle").click()
        expect(overlay).to_be_visible()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=overlay.element_handle())
        assert overlay.evaluate("img => img.naturalWidth") > 1000  # the page itself, not a thumbnail
        expect(first.locator(".explanation-toggle")).to_have_text("Hide the overlay")

        # 4d. The first result's PDF report downloads and opens with its label and the caveat;
        # so does the batch's, one summary page and one report per image.
        first_name = first.locator(".job-name").text_content()
        first_label = first.locator(".job-label").text_content()
        with page.expect_download() as download:
            first.locator("a.job-report").click()
        report = _pdf_text(download.value.path())
        assert f"ECG report: {first_name}" in report[1] and first_label in report[1], report
        assert "Research software, not a medical device" in report[1]
        with page.expect_download() as download:
            page.click("#batch-report")
        pages, batch_report = _pdf_text(download.value.path())
        assert pages >= 4 and batch_report.count("ECG report: ") == 3, (pages, batch_report)

        # 5. The completion toast, and still the same document: nothing was reloaded.
        page.wait_for_function("() => window.__e2eToasts.length > 0", timeout=PAGE_TIMEOUT_MS)
        toasts = page.evaluate("window.__e2eToasts")
        assert len(toasts) == 1 and "is complete: 3 classified." in toasts[0], toasts
        assert page.evaluate("window.__e2eDocument") == "batch page, before any live result"
        assert navigations == [], f"the page navigated while results arrived: {navigations}"
        assert page_errors == [], f"the page raised script errors: {page_errors}"
        page.screenshot(path=tmp_path / "batch-page.png", full_page=True)
        print(f"screenshot of the finished batch page: {tmp_path / 'batch-page.png'}")
    except Exception:
        _screenshot_failure(page, tmp_path)
        raise
    finally:
        context.close()


def test_a_phone_photo_of_a_printout_is_straightened_classified_and_shown(
    live_stack: LiveStack, browser: object, tmp_path: Path
) -> None:
    """Issue 15: a phone photo (the page on a desk, at an angle, unevenly lit) goes up through the
    upload page like a scan, is stored as the straightened page, and gets its result live."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    user = SiteClient(live_stack.base_url)
    user.sign_up(unique_email("e2e-photo"), live_stack.mail_dir)
    context = browser.new_context(base_url=live_stack.base_url, viewport={"width": 1280, "height": 1100})
    context.add_cookies(
        [{"name": c.name, "value": c.value or "", "url": live_stack.base_url} for c in user.cookies]
    )
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    photo = render_photo_bytes("abnormal", 21, kind="desk")
    try:
        page.goto("/upload/")
        page.set_input_files(
            "#images", files=[{"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": photo}]
        )
        expect(page.locator("#chosen")).to_have_text("1 file chosen")
        page.click("#upload-button")
        page.wait_for_url(re.compile(r"/batches/\d+/$"))

        progress = page.locator("#batch-progress")
        expect(progress).to_have_attribute("data-done", "1", timeout=RESULTS_TIMEOUT_MS)
        [card] = page.evaluate(READ_CARDS)
        assert (card["status"], card["name"]) == ("succeeded", "phone.jpg"), card
        assert card["label"] in LABEL_NAMES and card["measurements"] is not None, card
        # Labelled by the model's photo rule, and the page says it was read from a photo.
        expect(page.locator("#jobs article.job .photo-note")).to_have_text(
            "Read from a photo: the page was found and straightened."
        )
        # The page shown beside the result is the straightened page, not the photo as taken.
        thumb = page.locator("#jobs article.job img.thumb")
        thumb.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
        size = thumb.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
        assert size == [1200, 852], size
        assert page_errors == [], f"the page raised script errors: {page_errors}"
    except Exception:
        _screenshot_failure(page, tmp_path)
        raise
    finally:
        context.close()
