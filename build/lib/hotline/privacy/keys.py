"""Key rotation: every stored caller key and sealed number, kept usable across a new key.

Two keys protect what the hotline stores (hotline/privacy.py): the seal key encrypts the
numbers kept for callbacks and follow-ups, the caller-key secret turns a number into the key
that links a caller's contacts, follow-ups and opt-out. Each setting lists several keys,
newest first; the newest is used for everything new, the older ones only to read.

* Sealed numbers: ``rotate`` seals each again under the newest key (MultiFernet), after which
  an older seal key can go.
* Caller keys cannot be recomputed without the number. ``rotate`` re-keys every caller whose
  number is still sealed somewhere; any other caller is re-keyed the next time they call or
  text (``current_caller_key``), and until then lookups try every live version
  (``opted_out``). An older version can go once ``status`` shows no row under it (or when
  losing those rows' links is accepted: their opt-outs would then stop holding).

A caller's rows always move together (contacts, follow-ups, opt-out in one transaction), so
repeat counts and the opt-out join of the follow-ups never see a caller split over versions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hotline.privacy import primitives as privacy
from hotline.models import CallbackRequest, Contact, FollowUp, OptOut, Outreach, insert_for
from hotline.core.settings import Settings, caller_secrets

log = logging.getLogger(__name__)

#: Every column holding a sealed number (tests/test_keys.py checks that none is missing).
SEALED_COLUMNS = (Contact.sealed_number, CallbackRequest.sealed_number, FollowUp.sealed_number,
                  Outreach.sealed_number)
#: Every column holding a caller key; a caller's rows are re-keyed in all of them at once.
CALLER_KEY_COLUMNS = (Contact.caller_key, FollowUp.caller_key, OptOut.caller_key,
                      Outreach.caller_key)
#: In ``status``: rows under a version or key no longer configured.
RETIRED = "retired"
#: Rows re-sealed per transaction by ``rotate``.
BATCH = 500


def current_caller_key(session: Session, e164: str, cfg: Settings) -> str:
    """The caller's key under the newest version; their rows under older versions move to it
    first (in the caller's transaction), so one caller is one key from here on."""
    keys = privacy.caller_keys(e164, cfg)
    if len(keys) > 1 and e164:
        rekey(session, keys[0], keys[1:])
    return keys[0]


def rekey(session: Session, newest: str, older: tuple[str, ...]) -> None:
    """Move every row stored under one of ``older`` (one caller's keys) to ``newest``."""
    for model in (Contact, FollowUp, Outreach):
        session.execute(update(model).where(model.caller_key.in_(older))
                        .values(caller_key=newest).execution_options(synchronize_session=False))
    first = session.execute(select(OptOut.created_at).where(OptOut.caller_key.in_(older))
                            .order_by(OptOut.created_at).limit(1)).first()
    if first is not None:
        # The opt-out is a primary key: add the newest one (unless a concurrent request did)
        # and drop the older ones, rather than update into a possible duplicate.
        session.execute(insert_for(session, OptOut).on_conflict_do_nothing().values(
            caller_key=newest, created_at=first.created_at))
        session.execute(delete(OptOut).where(OptOut.caller_key.in_(older))
                        .execution_options(synchronize_session=False))
    session.expire_all()


def opted_out(session: Session, e164: str, cfg: Settings) -> bool:
    """Whether the number texted STOP, under any live caller-key version."""
    keys = privacy.caller_keys(e164, cfg)
    return session.scalar(select(OptOut.caller_key).where(OptOut.caller_key.in_(keys))
                          .limit(1)) is not None


@dataclass
class Rotation:
    """What ``rotate`` did: counts only."""
    resealed: int = 0
    rekeyed_callers: int = 0
    unreadable: int = 0   # sealed under a key no longer configured: left as is


def rotate(session: Session, cfg: Settings) -> Rotation:
    """Seal every stored number under the newest seal key and re-key each of those callers to
    the newest caller-key version. Safe while the hotline runs: each row is written only if
    it still holds the token read (a callback done meanwhile is not brought back)."""
    done = Rotation()
    newest_seal = privacy.sealer(cfg).newest
    versions = len(privacy.caller_keys("", cfg))  # how many caller-key secrets are live
    seen: set[str] = set()
    for column in SEALED_COLUMNS:
        model = column.class_
        last_id = 0
        while True:
            rows = session.execute(
                select(model.id, column).where(column.is_not(None), model.id > last_id)
                .order_by(model.id).limit(BATCH)).all()
            if not rows:
                break
            for row_id, token in rows:
                last_id = row_id
                try:
                    number = privacy.unseal(token, cfg)
                except InvalidToken:
                    done.unreadable += 1
                    continue
                if privacy.seal_key_id(token) != newest_seal:
                    result = session.execute(
                        update(model).where(model.id == row_id, column == token)
                        .values({column.key: privacy.reseal(token, cfg)})
                        .execution_options(synchronize_session=False))
                    done.resealed += result.rowcount
                if versions > 1 and number not in seen:
                    seen.add(number)
                    keys = privacy.caller_keys(number, cfg)
                    if _stored_under(session, keys[1:]):
                        rekey(session, keys[0], keys[1:])
                        done.rekeyed_callers += 1
            session.commit()
    if done.unreadable:
        log.warning("%d sealed numbers could not be opened with any configured seal key",
                    done.unreadable)
    return done


def _stored_under(session: Session, keys: tuple[str, ...]) -> bool:
    return any(session.scalar(select(column).where(column.in_(keys)).limit(1)) is not None
               for column in CALLER_KEY_COLUMNS)


@dataclass
class Status:
    """Rows per key: which older keys still hold something."""
    sealed: dict[str, int] = field(default_factory=dict)       # seal key id -> numbers
    caller_keys: dict[str, int] = field(default_factory=dict)  # version -> rows


def status(session: Session, cfg: Settings) -> Status:
    """How many sealed numbers each seal key holds and how many rows each caller-key version
    (id "" for what was sealed or keyed before ids and versions)."""
    out = Status()
    ids = privacy.sealer(cfg).ids
    for column in SEALED_COLUMNS:
        for token, in session.execute(select(column).where(column.is_not(None))):
            kid = privacy.seal_key_id(token)
            kid = kid if kid in ids or not kid else RETIRED
            out.sealed[kid] = out.sealed.get(kid, 0) + 1
    for column in CALLER_KEY_COLUMNS:
        versions = [v for v, _ in caller_secrets(cfg.CALLER_KEY_SECRET)]
        for version in versions:
            where = column.like(f"{version}:%") if version else ~column.like("v%:%")
            count = session.scalar(select(func.count()).where(where))
            out.caller_keys[version] = out.caller_keys.get(version, 0) + count
        # Versions no longer configured: these callers' links are already lost.
        known = [column.like(f"{v}:%") for v in versions if v]
        retired = session.scalar(select(func.count()).where(
            column.like("v%:%"), *[~k for k in known]))
        if retired:
            out.caller_keys[RETIRED] = out.caller_keys.get(RETIRED, 0) + retired
    return out
