"""Direct access to the real stack's MariaDB database, for setup and for checking rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MariaDB:
    """Where the real stack's database lives, parsed from DATABASE_URL."""

    host: str
    port: int
    user: str
    password: str
    name: str

    @classmethod
    def from_url(cls, url: str) -> MariaDB:
        import dj_database_url

        config = dj_database_url.parse(url)
        return cls(
            host=config["HOST"] or "127.0.0.1",
            port=int(config["PORT"] or 3306),
            user=config["USER"] or "root",
            password=config["PASSWORD"] or "",
            name=config["NAME"],
        )

    def connect(self, database: str | None = None) -> Any:
        import MySQLdb

        return MySQLdb.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database or "",
            charset="utf8mb4",
            autocommit=True,  # every query sees the latest commits, no stale snapshot
            connect_timeout=10,
        )

    def recreate(self) -> None:
        """Drop and create the stack's database (utf8mb4, as settings ask for)."""
        if not self.name.replace("_", "").isalnum():
            raise ValueError(f"refusing an odd database name: {self.name!r}")
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
                cursor.execute(
                    f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
        finally:
            connection.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        connection = self.connect(self.name)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()
