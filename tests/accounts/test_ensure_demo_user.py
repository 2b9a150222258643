"""manage.py ensure_demo_user: the account `make run` prints works at once, however often it runs."""

from __future__ import annotations

import io

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


def _ensure(*args: str) -> str:
    out = io.StringIO()
    call_command("ensure_demo_user", *args, stdout=out)
    return out.getvalue()


def _can_log_in(email: str, password: str) -> bool:
    client = Client()
    response = client.post("/accounts/login/", {"login": email, "password": password})
    return response.status_code == 302 and client.session.get("_auth_user_id") is not None


def test_it_creates_a_demo_account_that_can_log_in_through_the_login_page():
    output = _ensure()

    assert "Demo account created: email demo@ecgsite.local  password demo-ecg-2026" in output
    assert _can_log_in("demo@ecgsite.local", "demo-ecg-2026")


def test_the_demo_email_is_verified_and_primary():
    _ensure()

    address = EmailAddress.objects.get(email="demo@ecgsite.local")
    assert (address.verified, address.primary, address.user.email) == (True, True, "demo@ecgsite.local")


def test_running_it_twice_keeps_one_account_that_still_logs_in():
    _ensure()
    output = _ensure()

    assert "Demo account ready" in output
    assert User.objects.filter(email="demo@ecgsite.local").count() == 1
    assert EmailAddress.objects.filter(email="demo@ecgsite.local").count() == 1
    assert _can_log_in("demo@ecgsite.local", "demo-ecg-2026")


def test_it_resets_a_changed_password():
    _ensure()
    user = User.objects.get(email="demo@ecgsite.local")
    user.set_password("changed-by-someone")
    user.save()

    _ensure()

    assert _can_log_in("demo@ecgsite.local", "demo-ecg-2026")


def test_it_takes_another_email_and_password():
    _ensure("--email", "trial@example.org", "--password", "trial-pass-2026")

    assert _can_log_in("trial@example.org", "trial-pass-2026")
    assert not User.objects.filter(email="demo@ecgsite.local").exists()


def test_the_demo_account_is_not_staff():
    _ensure()

    user = User.objects.get(email="demo@ecgsite.local")
    assert not (user.is_staff or user.is_superuser)
