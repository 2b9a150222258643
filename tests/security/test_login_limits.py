"""Sign-in limits: the admin has no door of its own (its login sends staff to allauth's, with its
failed-login limit per address and per account), and a locked password door leaves a way in
for the account's owner: a one-time code sent by email.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
ATTACKER = "203.0.113.9"
OWNER = "198.51.100.7"


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _admin_door(client: Client) -> str:
    """Where the admin's login sends a visitor who wants the admin."""
    response = client.get(ADMIN_LOGIN, {"next": "/admin/"})
    assert response.status_code == 302
    return response["Location"]


def test_the_admin_login_sends_visitors_to_the_rate_limited_account_login():
    location = _admin_door(Client())

    assert location.startswith(reverse("account_login"))
    assert "next=%2Fadmin%2F" in location


def test_posting_a_password_to_the_admin_login_signs_nobody_in(staff):
    client = Client()

    response = client.post(ADMIN_LOGIN, {"username": staff.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not _signed_in(client)


def test_after_twelve_wrong_passwords_at_the_admin_door_the_right_one_is_refused_too(staff):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for n in range(12):
        attacker.post(ADMIN_LOGIN, {"username": staff.email, "password": f"wrong-{n}"})
        door = _admin_door(attacker)
        attacker.post(door, {"login": staff.email, "password": f"wrong-{n}"})
    assert not _signed_in(attacker)

    owner = Client(REMOTE_ADDR=OWNER)  # the per-account limit holds from any address
    response = owner.post(_admin_door(owner), {"login": staff.email, "password": PASSWORD})

    page = response.content.decode()
    assert "Too many failed login attempts" in page
    assert not _signed_in(owner)
    # The lockout tells the owner about the door that still opens.
    assert "sign in with a code sent to your email" in page
    assert reverse("account_request_login_code") in page


def test_a_locked_out_owner_signs_in_with_a_code_sent_by_email(staff):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for n in range(12):
        attacker.post(reverse("account_login"), {"login": staff.email, "password": f"wrong-{n}"})
    owner = Client(REMOTE_ADDR=OWNER)
    refused = owner.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert "Too many failed login attempts" in refused.content.decode()
    mail.outbox.clear()

    requested = owner.post(reverse("account_request_login_code"), {"email": staff.email})
    assert requested.status_code == 302
    [message] = mail.outbox
    assert message.to == [staff.email]
    code = re.search(r"^\s*([A-Z0-9-]{6,})\s*$", message.body, re.MULTILINE).group(1)
    confirmed = owner.post(reverse("account_confirm_login_code"), {"code": code})

    assert confirmed.status_code == 302
    assert _signed_in(owner)
    assert int(owner.session["_auth_user_id"]) == staff.pk
    assert owner.get("/admin/").status_code == 200


def test_the_per_account_limit_slows_guessing_and_lifts_by_itself(staff, monkeypatch):
    """A sliding window, not a lock that an administrator must lift: failures age out."""
    import time
    from types import SimpleNamespace

    from allauth.account import app_settings
    from allauth.core.internal import ratelimit

    [per_account] = [
        rate for rate in ratelimit.parse_rates(app_settings.RATE_LIMITS["login_failed"]) if rate.per == "key"
    ]
    assert per_account.amount <= 10
    later = SimpleNamespace(
        time=lambda: time.time() + per_account.duration + 1, monotonic=time.monotonic, sleep=time.sleep
    )
    for n in range(per_account.amount):
        Client(REMOTE_ADDR=f"203.0.113.{n + 10}").post(
            reverse("account_login"), {"login": staff.email, "password": "x"}
        )
    owner = Client(REMOTE_ADDR=OWNER)
    refused = owner.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert "Too many failed login attempts" in refused.content.decode()
    assert not _signed_in(owner)

    monkeypatch.setattr(ratelimit, "time", later)
    owner.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})

    assert _signed_in(owner)
