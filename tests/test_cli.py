"""The ``hotline`` command: migrations and the supporters roster."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

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
    import sqlite3
    tables = {r[0] for r in sqlite3.connect(tmp_path / "fresh.db").execute(
        "select name from sqlite_master where type='table'")}
    assert {"supporters", "contacts", "offers", "contact_events", "callback_requests"} <= tables


def test_the_migrations_build_exactly_the_models_schema(app):
    """Every table, column and index the models declare is what `hotline db upgrade` made."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hotline.extensions import db
    from hotline.models import Base
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
