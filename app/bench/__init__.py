"""Benchmarks (`hotline bench …`): commands that print figures, not timed tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.config import Settings
from app.db import Database


@contextmanager
def scratch_sqlite(name: str) -> Iterator[tuple[Database, Settings]]:
    """The embedded default in a temporary data folder: a migrated SQLite database, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"hotline-bench-{name}-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", database_url=None, redis_url=None)
        settings.ensure_dirs()
        database = Database(settings.sqlalchemy_url)
        try:
            database.upgrade()
            yield database, settings
        finally:
            database.dispose()
