"""Look everywhere the hotline writes for things it must never keep."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote_plus

from rq import Queue
from sqlalchemy import select

from hotline.core.extensions import db, jobs
from hotline.models import Base


def assert_kept_nowhere(app, secrets: tuple[str, ...], log_text: str) -> None:
    """No secret in any table row, the SQLite file, any Redis key or value, a job or a log."""
    with app.app_context():
        for table in Base.metadata.sorted_tables:
            for row in db.session.execute(select(table)):
                assert not any(s in repr(tuple(row)) for s in secrets), table.name
        redis = jobs.queue.connection
        for key in redis.scan_iter():
            dumped = repr(key) + repr(redis.dump(key))
            assert not any(s in dumped for s in secrets), key
        queued = [j.args for j in Queue("hotline", connection=redis).jobs]
        assert not any(s in repr(queued) for s in secrets)
        url = app.extensions["hotline.settings"].DATABASE_URL
    if url.startswith("sqlite:///"):  # the database file itself, journal included
        path = Path(url.removeprefix("sqlite:///"))
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                raw = file.read_bytes()
                assert not any(s.encode() in raw for s in secrets), file
    readable = decoded(log_text)
    assert not any(s in log_text or s in readable for s in secrets)


def decoded(text: str) -> str:
    """``text`` as a reader of a log would take it: percent and form escapes undone (twice),
    and the separators people and URLs put inside numbers dropped (not line breaks)."""
    for _ in range(2):
        text = unquote_plus(text)
    return re.sub(r"[ \t().+\-]", "", text)
