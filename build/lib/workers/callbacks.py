"""Callback jobs: start a try (ring a peer, then the clinician), or text after the last."""

from __future__ import annotations

import logging

from hotline.callbacks import requests as callbacks
from hotline.privacy import primitives as privacy
from hotline.followups.consent import flows
from hotline.core.extensions import db, settings
from hotline.models import CallbackRequest, Contact
from workers import texts

log = logging.getLogger(__name__)


def start_try(callback_id: int) -> str:
    """Open a new try for a pending callback and route it (``callbacks.start_try``)."""
    return callbacks.start_try(db.session, callback_id)


def text_missed(callback_id: int) -> str:
    """After the last try: a discreet text saying how to ask again; the number goes."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None or not callback.sealed_number:
        return "nothing to do"
    original = db.session.get(Contact, callback.contact_id)
    number = privacy.unseal(callback.sealed_number, settings())
    texts.send(number, flows().message(original.language, "callback_missed"))
    callback.sealed_number = None
    db.session.commit()
    return "texted"
