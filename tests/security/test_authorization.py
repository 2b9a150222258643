"""Authorization: bob (`other_user`) never reaches alice's (`owner`) batches, jobs or images, by
page, API token, API session or websocket; images leave only through views that check ownership;
the admin needs staff; logins are rate limited.

Already proved elsewhere, not repeated here:
- pages: tests/classifier/test_pages.py (bob gets 404 for alice's batch page and image; the
  history lists only one's own batches; the image's nosniff / private headers);
- API with a token: tests/api/test_batches.py (404 for alice's batch, job and image; no delete;
  the list shows only one's own batches) and tests/api/test_auth_and_tokens.py (bob cannot
  revoke alice's token);
- websocket: tests/classifier/test_consumers.py (anonymous and foreign-origin connections are
  refused; bob's socket receives none of alice's events; `batch.subscribe` on alice's batch
  answers an error and no data; the connect snapshot holds only one's own batches);
- admin image view for non-staff and anonymous: tests/classifier/test_admin.py;
- five failed logins lock an account for a while: tests/accounts/test_accounts.py;
- the production safety settings' values: tests/ecgsite/test_settings.py.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve, reverse

from accounts.models import ApiToken
from accounts.tokens import api_token_create
from classifier.models import AuditEvent, Batch, Job
from tests.classifier.factories import ModelVersionFactory, PredictionFactory, page_signal_for
from tests.conftest import PASSWORD, fixed_explanation

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_session_api(other_client) -> Client:
    """Bob signed in with a browser session (no token), calling the API."""
    return other_client


# --- Bob's browser session on the API (the token cases are in tests/api/test_batches.py) -------


@pytest.fixture
def alices_signal(alices_job) -> Job:
    """alices_job with a prediction that carries its page's digitised leads and an explanation."""
    PredictionFactory(
        job=alices_job,
        model_version=ModelVersionFactory(),
        signal=page_signal_for(),
        explanation=fixed_explanation(),
    )
    return alices_job


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/batches/{batch}/",
        "/api/v1/jobs/{job}/",
        "/api/v1/jobs/{job}/image/",
        "/api/v1/jobs/{job}/signal/",
        "/api/v1/jobs/{job}/signal.csv",
        "/api/v1/jobs/{job}/fhir/",
        "/api/v1/batches/{batch}/fhir/",
        "/api/v1/jobs/{job}/explanation.png",
        "/api/v1/jobs/{job}/report.pdf",
        "/api/v1/batches/{batch}/report.pdf",
    ],
)
def test_another_users_session_gets_404_from_the_api(other_session_api, alices_signal, path):
    alices_job = alices_signal
    url = path.format(batch=alices_job.batch_id, job=alices_job.pk)

    response = other_session_api.get(url)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def test_another_users_session_cannot_delete_through_the_api(other_session_api, alices_job):
    response = other_session_api.delete(f"/api/v1/batches/{alices_job.batch_id}/")

    assert response.status_code == 404
    assert Batch.objects.filter(pk=alices_job.batch_id).exists()


def test_another_users_session_lists_none_of_the_owners_batches(other_session_api, alices_job):
    response = other_session_api.get("/api/v1/batches/")

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_another_users_token_lists_none_of_the_owners_batches(other_api, alices_job):
    response = other_api.get("/api/v1/batches/")

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/{job}/signal/",
        "/api/v1/jobs/{job}/signal.csv",
        "/jobs/{job}/signal.svg",
        "/api/v1/jobs/{job}/fhir/",
        "/api/v1/batches/{batch}/fhir/",
        "/api/v1/jobs/{job}/explanation.png",
        "/jobs/{job}/explanation.png",
        "/api/v1/jobs/{job}/report.pdf",
        "/api/v1/batches/{batch}/report.pdf",
    ],
)
def test_another_users_token_or_page_gets_404_for_a_signal(other_api, other_client, alices_signal, path):
    url = path.format(job=alices_signal.pk, batch=alices_signal.batch_id)

    client = other_api if url.startswith("/api/") else other_client
    assert client.get(url).status_code == 404


def test_the_owner_can_read_what_the_other_user_cannot(owner_api, alices_signal):
    """The control for the 404s above: the same addresses work for alice."""
    alices_job = alices_signal
    for url in [
        f"/api/v1/batches/{alices_job.batch_id}/",
        f"/api/v1/jobs/{alices_job.pk}/",
        f"/api/v1/jobs/{alices_job.pk}/image/",
        f"/api/v1/jobs/{alices_job.pk}/signal/",
        f"/api/v1/jobs/{alices_job.pk}/signal.csv",
        f"/api/v1/jobs/{alices_job.pk}/fhir/",
        f"/api/v1/batches/{alices_job.batch_id}/fhir/",
        f"/api/v1/jobs/{alices_job.pk}/explanation.png",
        f"/api/v1/jobs/{alices_job.pk}/report.pdf",
        f"/api/v1/batches/{alices_job.batch_id}/report.pdf",
    ]:
        assert owner_api.get(url).status_code == 200, url


def test_another_users_image_url_from_the_page_is_404(other_client, alices_job):
    assert other_client.get(reverse("classifier:job-image", args=[alices_job.pk])).status_code == 404


def test_the_owner_sees_the_drawing_that_the_other_user_cannot(owner_client, alices_signal):
    assert owner_client.get(f"/jobs/{alices_signal.pk}/signal.svg").status_code == 200
    assert owner_client.get(f"/jobs/{alices_signal.pk}/explanation.png").status_code == 200


def test_a_revoked_token_reaches_nothing(owner, alices_job):
    token, key = api_token_create(user=owner)
    ApiToken.objects.filter(pk=token.pk).update(revoked=token.created)
    client = Client(headers={"authorization": f"Token {key}"})

    assert client.get(f"/api/v1/jobs/{alices_job.pk}/image/").status_code == 401


@pytest.mark.parametrize(
    "url",
    [
        "/jobs/{job}/image/",
        "/api/v1/jobs/{job}/image/",
        "/jobs/{job}/explanation.png",
        "/api/v1/jobs/{job}/explanation.png",
    ],
)
def test_an_image_is_served_so_that_no_browser_runs_it_as_a_page(owner_client, alices_signal, url):
    response = owner_client.get(url.format(job=alices_signal.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


# --- No public media URL -----------------------------------------------------------------------


def _all_views(patterns, prefix: str = "") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _all_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), pattern.callback))
    return found


def test_no_url_serves_files_from_the_media_folder():
    from django.views.static import serve

    serving = [route for route, view in _all_views(get_resolver().url_patterns) if view is serve]

    assert serving == []


@pytest.mark.parametrize("debug", [False, True])
def test_a_stored_image_has_no_public_address(owner_client, alices_job, settings, debug):
    settings.DEBUG = debug
    name = alices_job.image.name

    for url in [f"/media/{name}", f"/{name}", f"{settings.MEDIA_URL or '/'}{name}"]:
        with pytest.raises(Resolver404):
            resolve(url)
        assert owner_client.get(url).status_code == 404, url


# --- The admin needs staff ---------------------------------------------------------------------


def _admin_pages(job: Job) -> list[str]:
    pages = [reverse("admin:index"), reverse("admin:classifier_job_image", args=[job.pk])]
    objects = {Job: job, Batch: job.batch}
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages += [reverse("admin:{}_{}_changelist".format(*info)), reverse("admin:{}_{}_add".format(*info))]
        if model in objects:
            pk = objects[model].pk
            for view in ("change", "delete", "history"):
                pages.append(reverse("admin:{}_{}_{}".format(*info, view), args=[pk]))
    pages.append(reverse("admin:app_list", args=["classifier"]))
    return pages


def test_every_admin_page_sends_a_non_staff_user_to_the_admin_login(owner_client, alices_job):
    pages = _admin_pages(alices_job)
    assert len(pages) > 20

    for url in pages:
        response = owner_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_every_admin_page_sends_an_anonymous_visitor_to_the_admin_login(client, alices_job):
    for url in _admin_pages(alices_job):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_a_non_staff_user_cannot_sign_in_to_the_admin(owner):
    client = Client()

    # The admin's login checks no passwords: it sends everyone to the account login (with its
    # rate limits, tests/security/test_login_limits.py).
    response = client.post(reverse("admin:login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session

    # Signed in there, a non-staff user is still kept out of the admin.
    client.post(response["Location"], {"login": owner.email, "password": PASSWORD})
    assert "_auth_user_id" in client.session
    index = client.get(reverse("admin:index"))
    assert index.status_code == 302
    assert index["Location"].startswith(reverse("admin:login"))
    assert client.get(index["Location"]).status_code == 403


def test_staff_can_open_the_admin_pages(staff_client, alices_job):
    """The control: the same pages are there for staff (add pages excepted: history is read-only)."""
    for url in _admin_pages(alices_job):
        response = staff_client.get(url)
        assert response.status_code in (200, 403), url


# --- Login rate limits -------------------------------------------------------------------------


def test_allauth_rate_limits_are_on_and_counted_in_a_cache_that_keeps_counts():
    from allauth.account import app_settings

    assert getattr(settings, "ACCOUNT_RATE_LIMITS", {}) is not False
    assert app_settings.RATE_LIMITS["login"]
    assert app_settings.RATE_LIMITS["login_failed"]
    assert settings.CACHES["default"]["BACKEND"] != "django.core.cache.backends.dummy.DummyCache"


def test_too_many_login_attempts_from_one_address_get_429(owner):
    client = Client()
    statuses = [
        client.post("/accounts/login/", {"login": f"nobody{n}@example.com", "password": "x"}).status_code
        for n in range(31)
    ]

    assert set(statuses[:10]) == {200}
    assert statuses[-1] == 429


def test_failed_logins_to_many_accounts_from_one_address_lock_that_address_out(owner):
    client = Client()
    for n in range(10):
        client.post("/accounts/login/", {"login": f"guess{n}@example.com", "password": "wrong"})

    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})

    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_logins_are_recorded_in_the_audit_log_without_the_password(owner):
    Client().post("/accounts/login/", {"login": owner.email, "password": "wrong-secret"})

    event = AuditEvent.objects.get(action="login.failed")
    assert event.outcome == "failed"
    assert event.detail == {"login": owner.email}
    assert event.ip == "127.0.0.1"
    assert "wrong-secret" not in str(event.detail)
