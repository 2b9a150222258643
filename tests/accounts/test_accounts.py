"""Accounts: people sign up and log in with an email address through allauth; there is no username."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-long-passphrase-42"


def _logged_in_user_id(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def test_the_user_model_is_accounts_user():
    assert settings.AUTH_USER_MODEL == "accounts.User"
    assert get_user_model() is User


def test_the_user_model_has_email_as_login_and_no_username():
    field_names = {field.name for field in User._meta.get_fields()}

    assert User.USERNAME_FIELD == "email"
    assert "username" not in field_names
    assert User._meta.get_field("email").unique


def test_create_user_requires_an_email():
    with pytest.raises(ValueError, match="email address is required"):
        User.objects.create_user(email="", password=PASSWORD)


def test_create_user_normalises_the_email_domain():
    user = User.objects.create_user(email="Ana@Example.COM", password=PASSWORD)

    assert user.email == "Ana@example.com"
    assert not (user.is_staff or user.is_superuser)


def test_create_superuser_makes_staff():
    user = User.objects.create_superuser(email="root@example.com", password=PASSWORD)

    assert user.is_staff and user.is_superuser


def test_signup_signs_in_only_once_the_emailed_link_is_followed(client, mailoutbox):
    response = client.post(
        "/accounts/signup/",
        {"email": "dana@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    user = User.objects.get(email="dana@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert user.check_password(NEW_PASSWORD)
    assert _logged_in_user_id(client) is None

    [message] = mailoutbox
    assert message.to == ["dana@example.com"]
    link = re.search(r"/accounts/confirm-email/[^/\s]+/", message.body).group(0)
    confirmed = client.post(link)

    assert confirmed.status_code == 302
    assert confirmed["Location"] == "/upload/"
    assert _logged_in_user_id(client) == user.pk


def test_signup_with_mismatched_passwords_creates_nobody(client):
    response = client.post(
        "/accounts/signup/",
        {"email": "dana@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"},
    )

    assert response.status_code == 200
    assert not User.objects.filter(email="dana@example.com").exists()
    assert _logged_in_user_id(client) is None


def test_signup_with_a_taken_email_creates_nobody(client, owner):
    client.post(
        "/accounts/signup/", {"email": owner.email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert User.objects.filter(email=owner.email).count() == 1
    assert not User.objects.get(email=owner.email).check_password(NEW_PASSWORD)


def test_login_with_email_and_password_logs_in_and_goes_to_upload(client, owner):
    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/upload/"
    assert _logged_in_user_id(client) == owner.pk


def test_login_with_a_wrong_password_is_refused(client, owner):
    response = client.post("/accounts/login/", {"login": owner.email, "password": "wrong-password"})

    assert response.status_code == 200
    assert _logged_in_user_id(client) is None


def test_after_five_failed_logins_even_the_right_password_is_refused_for_a_while(client, owner):
    for attempt in range(5):
        client.post("/accounts/login/", {"login": owner.email, "password": f"wrong-{attempt}"})

    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})

    assert "Too many failed login attempts" in response.content.decode()
    assert _logged_in_user_id(client) is None


def test_logout_ends_the_session(client, owner):
    client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert _logged_in_user_id(client) == owner.pk

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert _logged_in_user_id(client) is None
    assert client.get("/upload/").status_code == 302


def test_password_reset_emails_a_link_that_sets_a_new_password(client, owner, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": owner.email})

    assert response.status_code == 302
    (email,) = mailoutbox
    assert email.to == [owner.email]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", email.body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_password_reset_for_an_unknown_email_reveals_nothing_on_the_page(client, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert all("/accounts/password/reset/key/" not in email.body for email in mailoutbox)


@pytest.mark.parametrize("path", ["/upload/", "/batches/", "/batches/1/", "/jobs/1/image/"])
def test_anonymous_visitors_are_sent_to_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_an_anonymous_upload_post_stores_nothing(client, make_upload):
    from classifier.models import Batch

    response = client.post("/upload/", {"images": [make_upload()]})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert Batch.objects.count() == 0
