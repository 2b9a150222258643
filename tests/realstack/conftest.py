"""The real stack: MariaDB, Redis, daphne and a separate Celery worker process.

The services must already answer on loopback (``bash .ci/run`` starts them). The stack uses
its own database and Redis db number, emptied at the start, so it never touches a developer's
data or pytest-django's test database:

- ``REALSTACK_DATABASE_URL`` (default ``mysql://root@127.0.0.1:3306/ecgsite_ci``): dropped
  and created again, then migrated.
- ``REALSTACK_REDIS_URL`` (default ``redis://127.0.0.1:6379/5``): flushed, and the next
  database too (the rate-limit cache's).

A missing service fails the tests with a message saying so; it never skips them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from ecgsite.env import redis_url_db, redis_url_with_db
from tests.e2e.client import SiteClient, unique_email
from tests.e2e.livestack import LiveStack
from tests.e2e.support import pytest_runtest_makereport, require_default_model, start_stack  # noqa: F401
from tests.realstack.mariadb import MariaDB

DATABASE_URL = os.environ.get("REALSTACK_DATABASE_URL", "mysql://root@127.0.0.1:3306/ecgsite_ci")
REDIS_URL = os.environ.get("REALSTACK_REDIS_URL", "redis://127.0.0.1:6379/5")


@pytest.fixture(scope="session")
def mariadb() -> MariaDB:
    database = MariaDB.from_url(DATABASE_URL)
    try:
        database.connect().close()
    except Exception as error:
        pytest.fail(
            f"MariaDB does not answer at {database.host}:{database.port} as {database.user}: {error}. "
            "Start it (bash .ci/run does) or set REALSTACK_DATABASE_URL.",
            pytrace=False,
        )
    return database


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    try:
        client.ping()
    except Exception as error:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL}: {error}. Start it (bash .ci/run does) "
            "or set REALSTACK_REDIS_URL.",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def real_stack(mariadb: MariaDB, redis_url: str) -> Iterator[LiveStack]:
    """daphne and one Celery worker (solo pool) on MariaDB and Redis, emptied first."""
    import redis

    require_default_model()
    mariadb.recreate()
    # The queue's database and the cache's (the next one: see settings.CACHES) start empty.
    for url in (redis_url, redis_url_with_db(redis_url, redis_url_db(redis_url) + 1)):
        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
        finally:
            client.close()
    stack = LiveStack(
        label="ecgsite-realstack",
        with_worker=True,
        extra_env={
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
        },
    )
    start_stack(stack)
    try:
        yield stack
    finally:
        stack.stop()


def signed_up_client(stack: LiveStack, name: str) -> SiteClient:
    client = SiteClient(stack.base_url)
    client.sign_up(unique_email(name), stack.mail_dir)
    return client


@pytest.fixture(scope="session")
def alice(real_stack: LiveStack) -> SiteClient:
    """The owner: uploads batches and gets their events."""
    return signed_up_client(real_stack, "alice")


@pytest.fixture(scope="session")
def bob(real_stack: LiveStack) -> SiteClient:
    """Another user: must never see alice's batches or events."""
    return signed_up_client(real_stack, "bob")
