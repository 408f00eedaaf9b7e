"""gunicorn's access log, made safe for a confidential service (``logger_class`` in
config/gunicorn.conf.py).

An access line is built from "atoms" of the request. Query strings may carry numbers
(``To=%2B1617...``) and paths may carry secrets (an old invitation link), and an operator
may change ``access_log_format`` to log headers (cookies) or the WSGI environ. So the
atoms themselves are cleaned, whatever the format asks for: request line and referrer
without query strings, token-like path segments masked, no headers but the user agent,
no environ; and every handler of gunicorn's loggers redacts numbers as the app's do.
On the anonymous pages (``ANONYMOUS_PATHS``: the staff pulse survey) the client address is
not logged either: the line's ``h`` is "-".
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from hotline.privacy import primitives as privacy

#: Atoms kept as gunicorn computes them: none carries a query string, a header or a path.
_PLAIN_ATOMS = ("h", "l", "u", "t", "s", "m", "H", "b", "B", "T", "D", "M", "L", "p")
#: Pages promised anonymous, whose access lines carry no client address (hotline/pulse).
ANONYMOUS_PATHS = ("/pulse",)


def anonymous(path: str) -> bool:
    """Whether ``path`` is one of ``ANONYMOUS_PATHS`` (or below one)."""
    return any(path == p or path.startswith(p + "/") for p in ANONYMOUS_PATHS)


class RedactingLogger(Logger):
    """gunicorn's logger, with the hotline's redaction on every handler it sets up."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        privacy.install_log_redaction()
        privacy.redact_handlers(self.error_log, self.access_log)

    def atoms(self, resp, req, environ, request_time) -> dict:
        raw = super().atoms(resp, req, environ, request_time)
        atoms = {key: raw[key] for key in _PLAIN_ATOMS if key in raw}
        path = privacy.redact_url(environ.get("RAW_URI") or environ.get("PATH_INFO") or "")
        atoms["U"] = path
        if anonymous(environ.get("PATH_INFO") or path):
            atoms["h"] = "-"
        atoms["q"] = "-"
        atoms["r"] = f"{raw.get('m')} {path} {raw.get('H')}"
        referrer = environ.get("HTTP_REFERER")
        atoms["f"] = privacy.redact_url(referrer) if referrer else "-"
        atoms["a"] = privacy.redact(raw.get("a") or "-")
        atoms["{user-agent}i"] = atoms["a"]
        return atoms
