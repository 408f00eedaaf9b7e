"""Alembic, driven from the app: ``hotline db upgrade`` and the test fixtures use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from hotline.core.extensions import settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def config(url: str | None = None) -> Config:
    """An Alembic config for this app's database (or ``url``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or settings().DATABASE_URL).replace("%", "%%"))
    return cfg


def upgrade(revision: str = "head", url: str | None = None) -> None:
    """Migrate the database up to ``revision``."""
    command.upgrade(config(url), revision)
