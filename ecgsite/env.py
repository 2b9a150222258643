"""Typed readers for environment variables, so settings.py stays declarative."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """Value of NAME, or of the file named by NAME_FILE (for container secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be one of {sorted(_TRUE | _FALSE)}; got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {raw!r}") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def redis_url_db(url: str) -> int:
    """The database number a ``redis://`` or ``rediss://`` URL names (its path; 0 when empty)."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise ValueError(f"expected a redis:// or rediss:// URL; got {parts.scheme!r}")
    if "db=" in parts.query:
        raise ValueError("give the Redis database number in the URL's path, not as ?db=")
    number = parts.path.strip("/") or "0"
    if not number.isdigit():
        raise ValueError(f"the path of a Redis URL is its database number; got {parts.path!r}")
    return int(number)


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server as ``url`` (credentials and options kept), database ``db``."""
    redis_url_db(url)  # the same checks
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))
