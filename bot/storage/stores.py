"""Which store the settings name: the SQLite file (bot.storage.db), or PostgreSQL
(bot.storage.pg, imported only when configured). Apart from both so neither imports the
other."""

from __future__ import annotations

from bot.config import Settings
from bot.storage.db import Backend, Database


def open_database(settings: Settings) -> Backend:
    """The store the settings name (not yet connected): PostgreSQL when TAIQU_DATABASE_URL is
    set, else the SQLite file at TAIQU_DB_PATH."""
    if settings.database_url:
        from bot.storage.pg import PgDatabase

        return PgDatabase(settings.database_url, busy_timeout=settings.db_busy_timeout_seconds,
                          quick_wait=settings.db_write_wait_seconds,
                          pool_size=settings.db_pool_size)
    return Database(settings.db_path, settings.sqlite_synchronous,
                    busy_timeout=settings.db_busy_timeout_seconds,
                    quick_wait=settings.db_write_wait_seconds,
                    step_synchronous=settings.sqlite_step_synchronous)
