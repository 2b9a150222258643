"""Token and session auth, and the ways tokens are made: account page, admin, command line."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from accounts.tokens import api_token_create, api_token_revoke
from tests.classifier.factories import BatchFactory
from tests.conftest import assert_problem

BATCHES = "/api/v1/batches/"
TOKENS_PAGE = "/accounts/tokens/"


def _client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_valid_token_authenticates_as_its_user(owner, owner_key):
    mine = BatchFactory(owner=owner)
    response = _client_with(owner_key).get(BATCHES)
    assert response.status_code == 200
    assert [b["id"] for b in response.json()["results"]] == [mine.pk]


def test_no_credentials_is_a_401_problem_with_a_token_challenge(db):
    response = APIClient().get(BATCHES)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_an_unknown_token_is_a_401_problem(db):
    body = assert_problem(_client_with("ecg_not-a-real-key").get(BATCHES), 401)
    assert body["type"] == "urn:ecgsite:problem:authentication-failed"


def test_a_revoked_token_is_a_401_problem(owner):
    token, key = api_token_create(user=owner)
    assert api_token_revoke(user=owner, token_id=token.pk)
    assert_problem(_client_with(key).get(BATCHES), 401)


def test_a_token_of_a_deactivated_user_is_a_401_problem(owner, owner_key):
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert_problem(_client_with(owner_key).get(BATCHES), 401)


def test_a_malformed_authorization_header_is_a_401_problem(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert_problem(client.get(BATCHES), 401)


def test_a_signed_in_browser_session_works_too(owner):
    mine = BatchFactory(owner=owner)
    client = Client()
    client.force_login(owner)
    assert [b["id"] for b in client.get(BATCHES).json()["results"]] == [mine.pk]


def test_tokens_are_stored_only_as_their_sha256(owner):
    token, key = api_token_create(user=owner)
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {stored.key_hash, stored.prefix, stored.name}
    assert key.startswith(stored.prefix)


def test_using_a_token_records_when_it_was_last_used(owner, owner_key):
    _client_with(owner_key).get(BATCHES)
    assert ApiToken.objects.get(user=owner).last_used is not None


def test_the_token_page_needs_a_signed_in_user(db):
    assert Client().get(TOKENS_PAGE).status_code == 302


def test_the_token_page_creates_a_token_and_shows_its_key_once(owner):
    client = Client()
    client.force_login(owner)
    response = client.post(TOKENS_PAGE, {"name": "PACS bridge"})
    assert response.status_code == 201
    key = re.search(r'data-testid="new-key">([^<]+)<', response.content.decode()).group(1)
    assert _client_with(key).get(BATCHES).status_code == 200
    listing = client.get(TOKENS_PAGE).content.decode()
    assert "PACS bridge" in listing
    assert key not in listing


def test_the_token_page_lists_only_the_users_tokens(owner, other_user):
    api_token_create(user=owner, name="mine")
    api_token_create(user=other_user, name="theirs")
    client = Client()
    client.force_login(owner)
    page = client.get(TOKENS_PAGE).content.decode()
    assert "mine" in page
    assert "theirs" not in page


def test_the_token_page_revokes_a_token(owner):
    token, key = api_token_create(user=owner)
    client = Client()
    client.force_login(owner)
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert ApiToken.objects.get(pk=token.pk).revoked is not None
    assert_problem(_client_with(key).get(BATCHES), 401)


def test_a_user_cannot_revoke_another_users_token(owner, other_user):
    token, _key = api_token_create(user=other_user)
    client = Client()
    client.force_login(owner)
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert ApiToken.objects.get(pk=token.pk).revoked is None


def test_the_token_page_is_linked_from_the_navigation(owner):
    client = Client()
    client.force_login(owner)
    assert f'href="{TOKENS_PAGE}"' in client.get("/upload/").content.decode()


def test_the_command_prints_a_working_token_for_an_existing_account(owner):
    out = io.StringIO()
    call_command("create_api_token", owner.email, stdout=out)
    key = out.getvalue().strip()
    assert _client_with(key).get(BATCHES).status_code == 200


def test_the_command_refuses_an_unknown_email_without_create_user(db):
    with pytest.raises(CommandError, match="--create-user"):
        call_command("create_api_token", "nobody@example.com", stdout=io.StringIO())
    assert not User.objects.filter(email="nobody@example.com").exists()


def test_the_command_creates_the_account_with_an_unusable_password_when_asked(db):
    out = io.StringIO()
    call_command("create_api_token", "script@example.com", "--create-user", stdout=out, stderr=io.StringIO())
    user = User.objects.get(email="script@example.com")
    assert not user.has_usable_password()
    assert (
        ApiToken.objects.get(user=user).key_hash
        == hashlib.sha256(out.getvalue().strip().encode()).hexdigest()
    )


def test_staff_create_a_token_in_admin_and_see_its_key_once(staff, owner):
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/accounts/apitoken/add/", {"user": owner.pk, "name": "from admin"}, follow=True
    )
    message = next(str(m) for m in response.context["messages"])
    key = message.rsplit(" ", 1)[1]
    token = ApiToken.objects.get(name="from admin")
    assert token.user == owner
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()


def test_staff_revoke_tokens_in_admin(staff, owner):
    token, key = api_token_create(user=owner)
    client = Client()
    client.force_login(staff)
    client.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert_problem(_client_with(key).get(BATCHES), 401)
