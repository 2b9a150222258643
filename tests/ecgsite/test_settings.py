"""ecgsite.settings: one module read from the environment.

Each configuration is imported in a fresh interpreter with a clean environment, since settings
are read once per process.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

REPO = Path(__file__).resolve().parents[2]

# Prints the named settings as JSON, or the exception that importing the settings raised.
PROBE = """
import json, sys
from django.conf import settings
try:
    settings.INSTALLED_APPS
except Exception as error:
    print(json.dumps({"raised": type(error).__name__, "message": str(error)}))
    sys.exit(0)
print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}, default=str))
"""


def _settings_with(tmp_path: Path, env: dict[str, str], *names: str) -> dict:
    clean_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "ecgsite.settings",
        "ECGSITE_VAR_DIR": str(tmp_path / "var"),
        **env,
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *names],
        cwd=REPO,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    result = _settings_with(tmp_path, {"ECGSITE_PRODUCTION": "1"}, "SECRET_KEY")

    assert result == {
        "raised": "ImproperlyConfigured",
        "message": "SECRET_KEY must be set when ECGSITE_PRODUCTION=1.",
    }


@pytest.mark.slow
def test_production_with_a_secret_key_turns_on_the_safety_settings(tmp_path):
    result = _settings_with(
        tmp_path,
        {"ECGSITE_PRODUCTION": "1", "SECRET_KEY": "k" * 50},
        "SECRET_KEY",
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
    )

    assert result["SECRET_KEY"] == "k" * 50
    assert result["DEBUG"] is False
    assert result["SESSION_COOKIE_SECURE"] and result["CSRF_COOKIE_SECURE"] and result["SECURE_SSL_REDIRECT"]
    assert result["SECURE_HSTS_SECONDS"] >= 31536000


@pytest.mark.slow
def test_a_mysql_database_url_gives_the_mysql_engine_with_utf8mb4(tmp_path):
    result = _settings_with(
        tmp_path, {"DATABASE_URL": "mysql://ecg:pw@db.internal:3306/ecgsite"}, "DATABASES"
    )

    database = result["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.mysql"
    assert (database["NAME"], database["HOST"], database["PORT"], database["USER"]) == (
        "ecgsite",
        "db.internal",
        3306,
        "ecg",
    )
    assert database["OPTIONS"]["charset"] == "utf8mb4"
    assert database["TEST"]["CHARSET"] == "utf8mb4"
    # Under ASGI persistent connections pile up past MySQL's limit (found by bench/load.py).
    assert database["CONN_MAX_AGE"] == 0


@pytest.mark.slow
def test_a_redis_url_switches_to_celery_and_the_redis_channel_layer(tmp_path):
    result = _settings_with(
        tmp_path,
        {"REDIS_URL": "redis://cache.internal:6379/0"},
        "ECGSITE_TASK_RUNNER",
        "CHANNEL_LAYERS",
        "CELERY_BROKER_URL",
    )

    assert result["ECGSITE_TASK_RUNNER"] == "celery"
    assert result["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    (host,) = result["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]
    assert host["address"] == "redis://cache.internal:6379/0"
    # Longer than channels_redis's blocking 5 s read, or idle websockets drop (channels_redis#422).
    assert host["socket_timeout"] > 5
    assert result["CELERY_BROKER_URL"] == "redis://cache.internal:6379/0"


@pytest.mark.slow
def test_a_redis_url_puts_the_rate_limit_cache_in_redis_on_the_next_database(tmp_path):
    result = _settings_with(tmp_path, {"REDIS_URL": "redis://:pw@cache.internal:6379/4"}, "CACHES")

    cache = result["CACHES"]["default"]
    assert cache["BACKEND"] == "ecgsite.cache.FallbackRedisCache"
    # Not the queue's database 4: clearing the cache empties a whole database.
    assert cache["LOCATION"] == "redis://:pw@cache.internal:6379/5"


@pytest.mark.slow
def test_the_cache_can_have_a_redis_of_its_own(tmp_path):
    result = _settings_with(
        tmp_path,
        {"REDIS_URL": "redis://queue.internal:6379/0", "ECGSITE_CACHE_URL": "redis://cache.internal:6380/3"},
        "CACHES",
    )

    assert result["CACHES"]["default"]["LOCATION"] == "redis://cache.internal:6380/3"


@pytest.mark.slow
def test_a_cache_on_the_queues_own_redis_database_refuses_to_start(tmp_path):
    result = _settings_with(
        tmp_path,
        {"REDIS_URL": "redis://queue.internal:6379/2", "ECGSITE_CACHE_URL": "redis://queue.internal:6379/2"},
        "CACHES",
    )

    assert result == {
        "raised": "ImproperlyConfigured",
        "message": "ECGSITE_CACHE_URL must name another Redis database than REDIS_URL.",
    }


@pytest.mark.slow
def test_a_queue_on_the_last_redis_database_asks_for_a_cache_url(tmp_path):
    result = _settings_with(tmp_path, {"REDIS_URL": "redis://queue.internal:6379/15"}, "CACHES")

    assert result["raised"] == "ImproperlyConfigured"
    assert "set ECGSITE_CACHE_URL" in result["message"]


@pytest.mark.slow
def test_nothing_set_gives_sqlite_and_the_embedded_worker(tmp_path):
    result = _settings_with(
        tmp_path, {}, "DATABASES", "ECGSITE_TASK_RUNNER", "CHANNEL_LAYERS", "DEBUG", "SECRET_KEY", "CACHES"
    )

    assert result["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert result["DATABASES"]["default"]["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert result["ECGSITE_TASK_RUNNER"] == "embedded"
    assert (
        result["CHANNEL_LAYERS"]["default"]["BACKEND"]
        == "ecgsite.channel_layers.ThreadSafeInMemoryChannelLayer"
    )
    assert result["DEBUG"] is False
    assert result["SECRET_KEY"] == (tmp_path / "var" / "secret_key").read_text().strip()
    assert result["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.slow
def test_the_generated_secret_key_is_kept_between_starts_and_private(tmp_path):
    first = _settings_with(tmp_path, {}, "SECRET_KEY")["SECRET_KEY"]
    second = _settings_with(tmp_path, {}, "SECRET_KEY")["SECRET_KEY"]

    assert first == second
    assert len(first) >= 50
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_an_unknown_task_runner_refuses_to_start(tmp_path):
    result = _settings_with(tmp_path, {"ECGSITE_TASK_RUNNER": "threads"}, "ECGSITE_TASK_RUNNER")

    assert result == {
        "raised": "ImproperlyConfigured",
        "message": "ECGSITE_TASK_RUNNER must be 'celery' or 'embedded'.",
    }


@pytest.mark.slow
def test_a_malformed_number_refuses_to_start_naming_the_variable(tmp_path):
    result = _settings_with(tmp_path, {"ECGSITE_MAX_ATTEMPTS": "three"}, "ECGSITE_MAX_ATTEMPTS")

    assert result["raised"] == "ValueError"
    assert "ECGSITE_MAX_ATTEMPTS must be an integer" in result["message"]


@pytest.mark.slow
def test_upload_limits_come_from_the_environment(tmp_path):
    result = _settings_with(
        tmp_path,
        {"ECGSITE_MAX_FILES_PER_BATCH": "12", "ECGSITE_MAX_UPLOAD_BYTES": "1048576"},
        "ECGSITE_MAX_FILES_PER_BATCH",
        "ECGSITE_MAX_UPLOAD_BYTES",
        "DATA_UPLOAD_MAX_NUMBER_FILES",
    )

    assert (result["ECGSITE_MAX_FILES_PER_BATCH"], result["ECGSITE_MAX_UPLOAD_BYTES"]) == (12, 1048576)
    assert result["DATA_UPLOAD_MAX_NUMBER_FILES"] > 12


def test_django_stops_parsing_files_only_above_our_batch_limit():
    # Django's own refusal is a bare "Bad Request" and an error in the log; ours names the limit.
    assert django_settings.DATA_UPLOAD_MAX_NUMBER_FILES > django_settings.ECGSITE_MAX_FILES_PER_BATCH


def test_the_websocket_app_checks_origin_and_session():
    from channels.auth import AuthMiddlewareStack
    from channels.security.websocket import OriginValidator

    from ecgsite.asgi import application
    from ecgsite.origins import SameOriginValidator
    from ecgsite.proxies import TrustedProxyAsgiMiddleware

    websocket = application.application_mapping["websocket"]
    # The proxy's client address and scheme first: the origin check compares the scheme.
    assert isinstance(websocket, TrustedProxyAsgiMiddleware)
    hosts_check = websocket.app
    assert isinstance(hosts_check, OriginValidator)
    same_origin_check = hosts_check.application
    assert isinstance(same_origin_check, SameOriginValidator)
    assert type(same_origin_check.application) is type(AuthMiddlewareStack(None))


def test_request_bodies_are_limited_before_django_reads_them():
    from ecgsite.asgi import application
    from ecgsite.request_limits import RequestSizeLimitMiddleware

    assert isinstance(application.application_mapping["http"], RequestSizeLimitMiddleware)
    assert django_settings.ECGSITE_MAX_REQUEST_BYTES == 256 * 1024 * 1024


def test_proxy_headers_are_handled_before_the_https_redirect():
    middleware = django_settings.MIDDLEWARE
    assert middleware.index("ecgsite.middleware.TrustedProxyMiddleware") < middleware.index(
        "django.middleware.security.SecurityMiddleware"
    )
    assert django_settings.ECGSITE_TRUSTED_PROXIES == []


@pytest.mark.slow
def test_trusted_proxies_and_the_request_ceiling_come_from_the_environment(tmp_path):
    result = _settings_with(
        tmp_path,
        {"ECGSITE_TRUSTED_PROXIES": "10.0.0.2, 172.16.0.0/12", "ECGSITE_MAX_REQUEST_BYTES": "1048576"},
        "ECGSITE_TRUSTED_PROXIES",
        "ECGSITE_MAX_REQUEST_BYTES",
    )

    assert result["ECGSITE_TRUSTED_PROXIES"] == ["10.0.0.2", "172.16.0.0/12"]
    assert result["ECGSITE_MAX_REQUEST_BYTES"] == 1048576


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ml_never_imports_django_or_the_web_apps():
    web = {
        "django",
        "channels",
        "celery",
        "rest_framework",
        "allauth",
        "accounts",
        "classifier",
        "worker",
        "ecgsite",
    }
    sources = sorted((REPO / "ml").rglob("*.py"))
    assert sources, "ml/ has Python sources"

    offenders = {
        str(path.relative_to(REPO)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] in web
        )
        for path in sources
    }

    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.slow
def test_a_trusted_proxy_that_is_no_address_refuses_to_start(tmp_path):
    result = _settings_with(tmp_path, {"ECGSITE_TRUSTED_PROXIES": "nginx"}, "ECGSITE_TRUSTED_PROXIES")

    assert result == {
        "raised": "ImproperlyConfigured",
        "message": "ECGSITE_TRUSTED_PROXIES: 'nginx' is no address or network.",
    }


@pytest.mark.slow
def test_the_pixel_ceiling_may_be_lowered_but_not_raised_above_the_one_the_workers_apply(tmp_path):
    lowered = _settings_with(tmp_path, {"ECGSITE_MAX_IMAGE_PIXELS": "1000000"}, "ECGSITE_MAX_IMAGE_PIXELS")
    raised = _settings_with(tmp_path, {"ECGSITE_MAX_IMAGE_PIXELS": "90000000"}, "ECGSITE_MAX_IMAGE_PIXELS")

    assert lowered == {"ECGSITE_MAX_IMAGE_PIXELS": 1_000_000}
    assert raised["raised"] == "ImproperlyConfigured"
    assert "must be between 1 and 40,000,000" in raised["message"]
