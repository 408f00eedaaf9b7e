"""Keys that can rotate: sealed numbers under key ids, caller keys under versions.

A rotation must keep every promise made under the old keys: a pending callback and a
scheduled follow-up still reach the clinician, a STOP still holds, a caller who comes back
still counts as a repeat caller. Each story runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select

from hotline.callbacks import requests as callbacks
from hotline.followups import consent
from hotline.privacy import keys
from hotline.privacy import primitives as privacy
from hotline.statistics import queries as stats
from hotline.core import settings as settings_module
from hotline.core.errors import SettingsError
from hotline.core.extensions import db, settings
from hotline.models import Base, Contact, FollowUp, OptOut, utcnow
from hotline.roster.shifts import program_zone
from tests.conftest import run_jobs
from tests.test_followups import due_now, texts_to

OLD_SEAL, NEW_SEAL = ("Dto_6m35H4fXW6UUiVy9c59yc9eYqjZ6-W811igaf0A=",
                      "RdsqvcyN494K-2FGbojvRshLqpfhtwajlEBg78CyNfw=")
OLD_SECRET = "v1:Hq7mGk4jDf9sLr6pEa1N3uX8wBv5tCz2y"
NEW_SECRET = "v2:Zr2VxK9pLm4TnW8cYb3HdF6gJs1AeU5oRi"
STOPPED, CALLED_BACK, RETURNING, FOLLOWED = ("+16175550301", "+16175550302", "+16175550303",
                                            "+12125550304")


@pytest.fixture
def app_settings(app_settings):
    """The app starts with one seal key and one caller-key version, as before a rotation."""
    app_settings.update(SEAL_KEY=OLD_SEAL, CALLER_KEY_SECRET=OLD_SECRET)
    return app_settings


def use_keys(app, seal_key: str, caller_secret: str) -> None:
    """What a restart with new HOTLINE_SEAL_KEY / HOTLINE_CALLER_KEY_SECRET does."""
    app.extensions["hotline.settings"] = settings().replace(SEAL_KEY=seal_key,
                                                           CALLER_KEY_SECRET=caller_secret)


def text(twilio, number: str, body: str, n: int):
    return twilio.post("/twilio/sms", {"MessageSid": f"SM{n:032d}", "From": number,
                                       "Body": body})


def call(twilio, number: str, n: int) -> Contact:
    twilio.post("/twilio/voice", {"CallSid": f"CA{n:032d}", "From": number})
    return db.session.scalar(select(Contact).where(Contact.call_sid == f"CA{n:032d}"))


def repeat_contacts() -> int:
    today = utcnow().astimezone(program_zone()).date()  # the app's now (the clock fixture's)
    period = stats.Period(today - timedelta(days=1), today + timedelta(days=1), program_zone())
    return stats.collect(db.session, period, cache=False).repeat


@pytest.mark.usefixtures("daytime")
def test_a_rotation_keeps_every_promise(app, session, twilio, stand_in, fresh_app):
    from workers import texts
    from workers.callbacks import text_missed

    # Before the rotation: a STOP, a callback promised, a caller whose number is gone, and
    # a clinician who said yes to follow-ups.
    text(twilio, STOPPED, "STOP", 1)
    waiting = call(twilio, CALLED_BACK, 2)
    callback = callbacks.request(session, waiting, CALLED_BACK)
    session.commit()
    first = call(twilio, RETURNING, 3)
    first.sealed_number, first.state = None, "ended"    # as retention leaves it
    first_id = first.id
    cfg = settings()
    clinician = Contact(channel="sms", caller_key=privacy.caller_key(FOLLOWED, cfg),
                        state="ended", outcome="connected", consent="asked",
                        sealed_number=privacy.seal(FOLLOWED, cfg))
    session.add(clinician)
    session.commit()
    consent.agree(session, clinician)
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 2

    # The rotation: new keys in front, then hotline keys rotate.
    use_keys(fresh_app, f"{NEW_SEAL},{OLD_SEAL}", f"{NEW_SECRET},{OLD_SECRET}")
    result = fresh_app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    new_id = privacy.sealer(settings()).newest
    now = keys.status(session, settings())
    assert set(now.sealed) == {new_id}                  # every sealed number moved
    # Callers whose number is still held were re-keyed; the STOP and the returning caller
    # (numbers long gone) stay under v1 until they come back.
    assert now.caller_keys["v1"] == 2 and now.caller_keys["v2"] >= 4
    assert "resealed\t" in result.output and "caller key v1 (older)\t2 rows" in result.output

    # The old seal key can go now: everything opens with the new one alone.
    use_keys(fresh_app, NEW_SEAL, f"{NEW_SECRET},{OLD_SECRET}")

    # The pending callback still reaches the clinician (its last step: a discreet text).
    session.refresh(callback)
    assert text_missed(callback.id) == "texted"
    assert len(texts_to(stand_in, CALLED_BACK)) == 1

    # The scheduled follow-ups still go out.
    due_now(session)
    run_jobs(fresh_app)
    assert len(texts_to(stand_in, FOLLOWED)) == 2

    # The STOP from before the rotation still holds: no text goes out, and a new text in
    # gets nothing back (and moves the opt-out to the new version).
    assert texts.send(STOPPED, "anything") is None
    reply = text(twilio, STOPPED, "hello", 4)
    assert b"<Message" not in reply.data and texts_to(stand_in, STOPPED) == []
    assert session.scalar(select(func.count()).select_from(Contact).where(
        Contact.caller_key.in_(privacy.caller_keys(STOPPED, settings())))) == 0
    assert session.get(OptOut, privacy.caller_key(STOPPED, settings())) is not None

    # The returning caller still counts as a repeat caller.
    second = call(twilio, RETURNING, 5)
    first = db.session.get(Contact, first_id)
    assert first.caller_key == second.caller_key == privacy.caller_key(RETURNING, settings())
    assert second.caller_key.startswith("v2:")
    assert repeat_contacts() == 2

    # Nothing is left under v1: the old caller-key secret can go too.
    assert keys.status(db.session, settings()).caller_keys["v1"] == 0


def test_the_stop_holds_under_every_live_version_before_the_caller_returns(app, session,
                                                                           twilio):
    text(twilio, STOPPED, "STOP", 1)
    use_keys(app, OLD_SEAL, f"{NEW_SECRET},{OLD_SECRET}")
    assert keys.opted_out(session, STOPPED, settings())
    use_keys(app, OLD_SEAL, NEW_SECRET)              # v1 dropped too early: the link is lost
    assert not keys.opted_out(session, STOPPED, settings())


def test_rekeying_meets_an_opt_out_already_under_the_new_version(app, session):
    """Two requests from one caller at once: the second finds the new opt-out in place."""
    use_keys(app, OLD_SEAL, f"{NEW_SECRET},{OLD_SECRET}")
    new, old = privacy.caller_keys(STOPPED, settings())
    session.add_all([OptOut(caller_key=old), OptOut(caller_key=new)])
    session.commit()
    assert keys.current_caller_key(session, STOPPED, settings()) == new
    session.commit()
    assert session.scalars(select(OptOut.caller_key)).all() == [new]


def _old_fernet(secret_key: str) -> Fernet:
    """How the hotline sealed before key ids: a Fernet key derived from SECRET_KEY."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"hotline seal").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _old_caller_key(secret_key: str, number: str) -> str:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"hotline caller key").derive(secret_key.encode())
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


def test_data_from_before_key_versions_moves_to_separate_keys(app, session):
    """An upgrade: numbers sealed and callers keyed under SECRET_KEY, as the hotline did,
    are read through the "derived" entries and moved to the new keys by a rotation."""
    secret_key = settings().SECRET_KEY
    old_token = _old_fernet(secret_key).encrypt(FOLLOWED.encode()).decode()
    old_key = _old_caller_key(secret_key, FOLLOWED)
    contact = Contact(channel="sms", caller_key=old_key, state="ended", consent="asked",
                      sealed_number=old_token)
    session.add_all([contact, OptOut(caller_key=_old_caller_key(secret_key, STOPPED))])
    session.commit()
    use_keys(app, f"{NEW_SEAL},derived", f"{NEW_SECRET},derived")
    assert privacy.unseal(old_token, settings()) == FOLLOWED
    assert keys.opted_out(session, STOPPED, settings())
    done = keys.rotate(session, settings())
    assert (done.resealed, done.rekeyed_callers, done.unreadable) == (1, 1, 0)
    session.refresh(contact)
    assert contact.caller_key == privacy.caller_key(FOLLOWED, settings())
    assert privacy.seal_key_id(contact.sealed_number) == privacy.sealer(settings()).newest
    use_keys(app, NEW_SEAL, f"{NEW_SECRET},derived")
    assert privacy.unseal(contact.sealed_number, settings()) == FOLLOWED
    assert keys.status(session, settings()).caller_keys == {"v2": 1, "": 1}  # the STOP


def test_a_rotation_does_not_bring_back_a_number_forgotten_meanwhile(app, session,
                                                                     monkeypatch):
    """``rotate`` writes a row only if it still holds the token it read."""
    contact = Contact(channel="sms", caller_key="k" * 64, state="ended",
                      sealed_number=privacy.seal(FOLLOWED, settings()))
    session.add(contact)
    session.commit()
    use_keys(app, f"{NEW_SEAL},{OLD_SEAL}", OLD_SECRET)
    real_unseal = privacy.unseal

    def forgotten_meanwhile(token, cfg):
        with db.engine.begin() as other:  # another process forgets the number now
            other.execute(Contact.__table__.update().values(sealed_number=None))
        return real_unseal(token, cfg)

    monkeypatch.setattr(privacy, "unseal", forgotten_meanwhile)
    done = keys.rotate(session, settings())
    session.expire_all()
    assert done.resealed == 0 and session.get(Contact, contact.id).sealed_number is None


def test_seal_keys_rotate_with_key_ids(app):
    cfg_old = settings().replace(SEAL_KEY=OLD_SEAL)
    cfg_both = settings().replace(SEAL_KEY=f"{NEW_SEAL},{OLD_SEAL}")
    cfg_new = settings().replace(SEAL_KEY=NEW_SEAL)
    token = privacy.seal(FOLLOWED, cfg_old)
    assert FOLLOWED[1:] not in token
    assert privacy.unseal(token, cfg_both) == FOLLOWED          # any listed key opens
    with pytest.raises(InvalidToken):
        privacy.unseal(token, cfg_new)                           # a dropped key does not
    moved = privacy.reseal(token, cfg_both)
    assert privacy.seal_key_id(moved) == privacy.sealer(cfg_new).newest != \
        privacy.seal_key_id(token)
    assert privacy.unseal(moved, cfg_new) == FOLLOWED
    assert privacy.seal_key_id(privacy.seal(FOLLOWED, cfg_both)) == privacy.seal_key_id(moved)
    with pytest.raises(InvalidToken):                            # tampering is still caught
        privacy.unseal(moved[:-4] + "AAAA", cfg_new)


def test_caller_keys_carry_their_version(app):
    cfg = settings().replace(CALLER_KEY_SECRET=f"{NEW_SECRET},{OLD_SECRET}")
    new, old = privacy.caller_keys(FOLLOWED, cfg)
    assert new.startswith("v2:") and old.startswith("v1:") and len(new) == len(old) == 64
    assert old == privacy.caller_key(FOLLOWED, settings().replace(CALLER_KEY_SECRET=OLD_SECRET))
    assert FOLLOWED[2:] not in new and privacy.caller_key_version(new) == "v2"


def test_every_column_holding_keys_or_sealed_numbers_is_rotated():
    """A new column of sealed numbers or caller keys must join the rotation."""
    sealed = {(c.table.name, c.name) for t in Base.metadata.tables.values() for c in t.columns
              if c.name.startswith("sealed")}
    keyed = {(c.table.name, c.name) for t in Base.metadata.tables.values() for c in t.columns
             if c.name == "caller_key"}
    assert sealed == {(c.table.name, c.name) for c in keys.SEALED_COLUMNS}
    assert keyed == {(c.table.name, c.name) for c in keys.CALLER_KEY_COLUMNS}


def test_keys_new_prints_values_production_accepts():
    from click.testing import CliRunner

    from hotline.privacy.key_commands import keys_new
    out = CliRunner().invoke(keys_new).output
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    from tests.test_settings import PRODUCTION
    cfg = settings_module.load({**PRODUCTION, **values})
    assert cfg.SEAL_KEY == values["HOTLINE_SEAL_KEY"] and cfg.is_production


def test_keys_new_never_prints_a_value_that_looks_like_a_placeholder(monkeypatch):
    """A random token contains "todo" or "xxxx" about once in ten thousand draws; the
    command draws again rather than print a secret production would refuse."""
    from click.testing import CliRunner

    from hotline.privacy import key_commands
    draws = iter(["abcTODOdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-"] * 2)
    monkeypatch.setattr(key_commands.secrets, "token_urlsafe", lambda n: next(draws))
    out = CliRunner().invoke(key_commands.keys_new).output
    assert "TODO" not in out and out.count("abcdefghijklmnop") == 2


def test_a_capital_v_version_is_refused_not_taken_for_a_secret():
    with pytest.raises(SettingsError, match="bad version"):
        settings_module.load({"HOTLINE_CALLER_KEY_SECRET": "V2:" + "s3cr3t-" * 6})


def test_a_rolling_restart_reads_what_either_configuration_wrote(app, session):
    """Step 1 of a rotation lists the new key second, on every process, before step 2 puts
    it first: a process still on step 1 reads what a process on step 2 already wrote."""
    step1 = settings().replace(SEAL_KEY=f"{OLD_SEAL},{NEW_SEAL}",
                               CALLER_KEY_SECRET=f"{OLD_SECRET},{NEW_SECRET}")
    step2 = settings().replace(SEAL_KEY=f"{NEW_SEAL},{OLD_SEAL}",
                               CALLER_KEY_SECRET=f"{NEW_SECRET},{OLD_SECRET}")
    assert privacy.unseal(privacy.seal(FOLLOWED, step2), step1) == FOLLOWED
    assert privacy.unseal(privacy.seal(FOLLOWED, step1), step2) == FOLLOWED
    session.add(OptOut(caller_key=privacy.caller_key(STOPPED, step2)))   # a STOP on step 2
    session.commit()
    assert keys.opted_out(session, STOPPED, step1)
    assert keys.current_caller_key(session, STOPPED, step1).startswith("v1:")
