"""A request id on every log line of a request, and ``HOTLINE_LOG_FORMAT=json``.

The request id is a fresh uuid4 per request (nothing of the caller's: not the call sid,
not the address), so the lines of one webhook can be read together. JSON lines are made
from the record after the redaction filter has rewritten it (``install_log_redaction``
redacts at record creation), so they carry no number either.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context

#: What a line outside any request (a job, start-up) shows as its request id.
NO_REQUEST = "-"
FORMATS = ("text", "json")


def new_request_id() -> str:
    g.hotline_request_id = uuid.uuid4().hex
    return g.hotline_request_id


def request_id() -> str:
    if has_request_context():
        return getattr(g, "hotline_request_id", NO_REQUEST)
    return NO_REQUEST


class RequestIdFilter(logging.Filter):
    """Put ``request_id`` on every record (for either format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id (and the
    traceback, already redacted, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)




def configure(handlers: list[logging.Handler], fmt: str) -> None:
    """Give ``handlers`` the request id and the chosen format (text or json)."""
    for handler in handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        if fmt == "json":
            handler.setFormatter(JsonFormatter())
