"""Response headers (issue 19, item 5): nothing that carries patient data is kept by a browser or
proxy cache (`Cache-Control: no-store`), and every page has a Content-Security-Policy that lets
only this site's own files run, style, frame or be posted to.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "script-src": "'self'",
    "connect-src": "'self' ws: wss:",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def _directives(header: str) -> dict[str, str]:
    parsed = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            parsed[name] = value.strip()
    return parsed


def _cache_directives(response) -> set[str]:
    return {part.strip().lower() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def test_the_owners_image_is_never_stored_by_the_browser(owner_client, alices_job):
    response = owner_client.get(f"/jobs/{alices_job.pk}/image/")

    assert response.status_code == 200
    assert "no-store" in _cache_directives(response)
    assert not any(d.startswith("max-age=") and d != "max-age=0" for d in _cache_directives(response))
    # The image keeps its own stricter policy: nothing in it may run.
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_the_api_image_is_never_stored(owner_api, alices_job):
    response = owner_api.get(f"/api/v1/jobs/{alices_job.pk}/image/")

    assert response.status_code == 200
    assert "no-store" in _cache_directives(response)


@pytest.mark.parametrize("path", ["/api/v1/batches/", "/api/v1/batches/{batch}/", "/api/v1/jobs/{job}/"])
def test_api_json_is_never_stored(owner_api, alices_job, path):
    response = owner_api.get(path.format(batch=alices_job.batch_id, job=alices_job.pk))

    assert response.status_code == 200
    assert "no-store" in _cache_directives(response)


def test_an_api_error_is_never_stored(owner_api):
    response = owner_api.get("/api/v1/batches/999999999/")

    assert response.status_code == 404
    assert "no-store" in _cache_directives(response)


@pytest.mark.parametrize("path", ["/batches/{batch}/", "/batches/", "/upload/", "/accounts/tokens/"])
def test_signed_in_pages_are_never_stored_and_have_the_policy(owner_client, alices_job, path):
    response = owner_client.get(path.format(batch=alices_job.batch_id))

    assert response.status_code == 200
    assert "no-store" in _cache_directives(response)
    assert _directives(response["Content-Security-Policy"]) == POLICY


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/", "/api/docs/"])
def test_public_pages_have_the_policy(db, path):
    response = Client().get(path)

    assert response.status_code == 200
    assert _directives(response["Content-Security-Policy"]) == POLICY


def test_the_admin_has_the_policy(staff_client):
    response = staff_client.get("/admin/")

    assert response.status_code == 200
    assert _directives(response["Content-Security-Policy"]) == POLICY
    assert "no-store" in _cache_directives(response)


def test_static_files_keep_their_own_caching(db):
    response = Client().get("/static/css/site.css")

    assert response.status_code == 200
    assert "no-store" not in _cache_directives(response)


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"|\son[a-z]+=\"", re.I)


def test_the_docs_page_runs_no_inline_script(db):
    page = Client().get("/api/docs/").content.decode()

    assert "swagger-ui" in page
    assert not INLINE_SCRIPT.search(page)
    assert not INLINE_STYLE.search(page)


def test_the_docs_init_script_is_a_file_of_its_own(db):
    page = Client().get("/api/docs/").content.decode()
    sources = re.findall(r'<script src="([^"]+)"', page)
    (script_url,) = [src for src in sources if "script" in src.split("?")[-1]]

    response = Client().get(script_url.replace("&amp;", "&"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()


@pytest.mark.parametrize("path", ["/batches/{batch}/", "/batches/", "/upload/", "/accounts/tokens/", "/"])
def test_our_pages_have_no_inline_script_or_style(owner_client, alices_job, path):
    page = owner_client.get(path.format(batch=alices_job.batch_id), follow=True).content.decode()

    assert not INLINE_SCRIPT.search(page)
    assert not INLINE_STYLE.search(page)


def test_the_model_comparison_page_has_no_inline_style(staff_client):
    response = staff_client.get(reverse("admin:classifier_modelversion_compare"))

    assert response.status_code == 200
    assert not INLINE_SCRIPT.search(response.content.decode())
    assert "<style" not in response.content.decode()
