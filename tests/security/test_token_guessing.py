"""Guessing API keys is slowed: failed token authentications are counted per client address
(ECGSITE_API_TOKEN_FAILURE_RATE); over the limit, that address gets 429 with Retry-After for any
key, a right one included, before the key is looked up, so the answer says nothing about a guess.
"""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.tokens import api_token_create
from tests.conftest import assert_problem

pytestmark = pytest.mark.django_db

BATCHES = "/api/v1/batches/"
GUESSER = "203.0.113.50"
NEIGHBOUR = "203.0.113.51"


def _get(key: str, ip: str):
    return Client(REMOTE_ADDR=ip).get(BATCHES, headers={"authorization": f"Token {key}"})


def _guess(n: int, ip: str = GUESSER):
    return _get(f"ecg_guess-{n:04d}", ip)


@pytest.fixture
def limit(settings) -> int:
    settings.ECGSITE_API_TOKEN_FAILURE_RATE = "20/min"
    return 20


def test_the_default_limit_is_twenty_failures_a_minute(settings):
    assert settings.ECGSITE_API_TOKEN_FAILURE_RATE == "20/min"


def test_the_guess_after_the_limit_gets_429_with_retry_after(limit):
    statuses = [_guess(n).status_code for n in range(limit)]
    response = _guess(limit)

    assert statuses == [401] * limit
    body = assert_problem(response, 429)
    assert body["type"] == "urn:ecgsite:problem:rate-limited"
    assert 0 < int(response["Retry-After"]) <= 60


def test_another_address_is_not_affected(limit, owner):
    for n in range(limit + 1):
        _guess(n)
    key = api_token_create(user=owner, name="neighbour")[1]

    assert _guess(999, NEIGHBOUR).status_code == 401
    assert _get(key, NEIGHBOUR).status_code == 200


def test_a_right_key_from_the_limited_address_is_also_refused(limit, owner, django_assert_max_num_queries):
    key = api_token_create(user=owner, name="mine")[1]
    for n in range(limit):
        _guess(n)

    # No oracle: the key is not even looked up, so a right guess looks like a wrong one.
    with django_assert_max_num_queries(0):
        response = _get(key, GUESSER)

    assert_problem(response, 429)
    assert response["Retry-After"]


def test_successful_requests_do_not_count(limit, owner):
    key = api_token_create(user=owner, name="busy")[1]
    for _ in range(limit + 5):
        assert _get(key, GUESSER).status_code == 200

    assert _guess(0).status_code == 401


def test_a_malformed_token_header_counts_as_a_failure(limit):
    client = Client(REMOTE_ADDR=GUESSER)
    for _ in range(limit):
        assert client.get(BATCHES, headers={"authorization": "Token two parts"}).status_code == 401

    assert _guess(0).status_code == 429
