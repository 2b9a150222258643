"""ecgsite.env: typed environment readers that name the variable when a value is wrong."""

from __future__ import annotations

import pytest

from ecgsite.env import env_bool, env_int, env_list, env_str, redis_url_db, redis_url_with_db


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " On "])
def test_env_bool_reads_true_spellings(monkeypatch, raw):
    monkeypatch.setenv("ECGSITE_FLAG", raw)

    assert env_bool("ECGSITE_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", ""])
def test_env_bool_reads_false_spellings(monkeypatch, raw):
    monkeypatch.setenv("ECGSITE_FLAG", raw)

    assert env_bool("ECGSITE_FLAG", True) is False


def test_env_bool_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("ECGSITE_FLAG", raising=False)

    assert env_bool("ECGSITE_FLAG", True) is True


def test_env_bool_rejects_other_values_naming_the_variable(monkeypatch):
    monkeypatch.setenv("ECGSITE_FLAG", "maybe")

    with pytest.raises(ValueError, match=r"ECGSITE_FLAG must be one of .*got 'maybe'"):
        env_bool("ECGSITE_FLAG")


def test_env_int_reads_an_integer(monkeypatch):
    monkeypatch.setenv("ECGSITE_COUNT", " 42 ")

    assert env_int("ECGSITE_COUNT", 7) == 42


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_env_int_uses_the_default_when_unset_or_blank(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("ECGSITE_COUNT", raising=False)
    else:
        monkeypatch.setenv("ECGSITE_COUNT", raw)

    assert env_int("ECGSITE_COUNT", 7) == 7


@pytest.mark.parametrize("raw", ["ten", "1.5", "20MB"])
def test_env_int_rejects_a_non_integer_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("ECGSITE_COUNT", raw)

    with pytest.raises(ValueError, match=rf"ECGSITE_COUNT must be an integer; got '{raw}'"):
        env_int("ECGSITE_COUNT", 7)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("ECGSITE_HOSTS", " ecg.example.org, ,localhost ,")

    assert env_list("ECGSITE_HOSTS") == ["ecg.example.org", "localhost"]


def test_env_list_uses_a_copy_of_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("ECGSITE_HOSTS", raising=False)
    default = ["localhost"]

    hosts = env_list("ECGSITE_HOSTS", default)
    hosts.append("changed")

    assert (hosts[0], default) == ("localhost", ["localhost"])


def test_env_list_of_an_empty_variable_is_empty(monkeypatch):
    monkeypatch.setenv("ECGSITE_HOSTS", "")

    assert env_list("ECGSITE_HOSTS", ["localhost"]) == []


def test_env_str_reads_a_secret_from_the_file_named_by_name_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret-from-file\n")
    monkeypatch.setenv("ECGSITE_SECRET", "from-env")
    monkeypatch.setenv("ECGSITE_SECRET_FILE", str(secret))

    assert env_str("ECGSITE_SECRET") == "s3cret-from-file"


def test_env_str_reads_the_variable(monkeypatch):
    monkeypatch.delenv("ECGSITE_SECRET_FILE", raising=False)
    monkeypatch.setenv("ECGSITE_SECRET", "from-env")

    assert env_str("ECGSITE_SECRET") == "from-env"


def test_env_str_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("ECGSITE_SECRET", raising=False)
    monkeypatch.delenv("ECGSITE_SECRET_FILE", raising=False)

    assert env_str("ECGSITE_SECRET", "fallback") == "fallback"


@pytest.mark.parametrize(
    ("url", "db"),
    [("redis://127.0.0.1:6379/5", 5), ("rediss://:secret@cache:6380/0", 0), ("redis://127.0.0.1:6379", 0)],
)
def test_redis_url_db_reads_the_database_number_from_the_path(url, db):
    assert redis_url_db(url) == db


def test_redis_url_with_db_keeps_the_server_credentials_and_options():
    url = "rediss://user:secret@cache.internal:6380/2?ssl_cert_reqs=required"

    assert redis_url_with_db(url, 3) == "rediss://user:secret@cache.internal:6380/3?ssl_cert_reqs=required"


@pytest.mark.parametrize("url", ["unix:///run/redis.sock", "redis://h:6379/x", "redis://h:6379?db=2"])
def test_redis_url_db_refuses_what_it_cannot_read(url):
    with pytest.raises(ValueError):
        redis_url_db(url)
