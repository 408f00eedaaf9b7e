"""hotline: a confidential SMS and voice peer-support line for clinicians.

``create_app`` (``hotline.app``) is the one factory; nothing is created or connected at import
time. The package root imports none of its parts: importing one (the settings, the stand-in,
a job) must not load the whole app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app (``hotline.app.create_app``): the name gunicorn and the tests use."""
    # Deferred so that importing any part of the package does not import every other part.
    from hotline.app import create_app as build
    return build(overrides)
