"""Load: 50 API clients submit and poll for a minute against daphne and two separate Celery
workers on MariaDB and Redis (bench/load.py at full size). No request gets a 5xx, and after a
drain every job in the database succeeded with exactly one prediction.

The stack has a database of its own (the realstack one's name + _load) and Redis db 8 (its
cache db 9), both emptied first, so it never meets the session's real_stack.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench.load import LoadConfig, format_summary, run_on_real_stack
from ecgsite.env import redis_url_db, redis_url_with_db
from tests.e2e.support import require_default_model
from tests.realstack.mariadb import MariaDB

pytestmark = [pytest.mark.realstack, pytest.mark.slow]

LOAD_REDIS_DB = 8


def database_url(database: MariaDB) -> str:
    credentials = database.user + (f":{database.password}" if database.password else "")
    return f"mysql://{credentials}@{database.host}:{database.port}/{database.name}"


def load_redis_url(realstack_redis_url: str) -> str:
    """The realstack's Redis server, db 8 (and 9 for the cache): apart from its db and cache db."""
    taken = {redis_url_db(realstack_redis_url), redis_url_db(realstack_redis_url) + 1}
    if {LOAD_REDIS_DB, LOAD_REDIS_DB + 1} & taken:
        pytest.fail(
            f"REALSTACK_REDIS_URL uses db {min(taken)}; the load test needs dbs 8 and 9", pytrace=False
        )
    return redis_url_with_db(realstack_redis_url, LOAD_REDIS_DB)


def test_fifty_clients_for_a_minute_get_no_5xx_and_lose_no_job(
    mariadb: MariaDB, redis_url: str, tmp_path: Path
) -> None:
    require_default_model()
    config = LoadConfig()
    database = dataclasses.replace(mariadb, name=f"{mariadb.name}_load")

    report = run_on_real_stack(
        config, database_url=database_url(database), redis_url=load_redis_url(redis_url)
    )

    (tmp_path / "load.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    print(format_summary(report))
    assert (config.clients, config.duration_s, config.workers) == (50, 60.0, 2)
    assert report["errors"]["5xx"] == 0, (report["errors"], report.get("logs"))
    assert report["lost_jobs"] == 0, (report["lost"], report.get("logs"))
    # Every client saw results: the stack made progress for all of them, not only for a few.
    assert report["completions"] >= config.clients
