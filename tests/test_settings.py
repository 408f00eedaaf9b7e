"""Settings, flows validation, phone numbers and the privacy primitives."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from hotline import flows, phones, privacy, settings
from hotline.errors import FlowError, InvalidPhoneNumber, SettingsError

PRODUCTION = {"HOTLINE_ENV": "production", "TWILIO_ACCOUNT_SID": "AC" + "2" * 32,
              "TWILIO_AUTH_TOKEN": "real-token", "HOTLINE_NUMBER": "+16175550100",
              "PUBLIC_BASE_URL": "https://hotline.example.org", "SECRET_KEY": "s" * 64,
              "DATABASE_URL": "postgresql+psycopg://h@db/h", "REDIS_URL": "redis://r:6379/0"}


def test_defaults_and_environment():
    cfg = settings.load({"HOTLINE_RING_SECONDS": "25", "BACKUP_NUMBERS": "+1617555019 8, +2"})
    assert cfg.RING_SECONDS == 25 and cfg.ACCEPT_SECONDS == 15
    assert cfg.BACKUP_AFTER_SECONDS == 90 and cfg.MAX_WAIT_SECONDS == 180
    assert cfg.CRISIS_LINE_NUMBER == "988" and cfg.TWILIO_API_BASE_URL == "https://api.twilio.com"
    assert cfg.BACKUP_NUMBERS == ("+1617555019 8", "+2")


def test_production_names_every_missing_setting():
    incomplete = {k: v for k, v in PRODUCTION.items() if k not in ("SECRET_KEY", "REDIS_URL")}
    with pytest.raises(SettingsError, match="SECRET_KEY, REDIS_URL"):
        settings.load(incomplete)
    assert settings.load(PRODUCTION).is_production


def test_production_refuses_development_secrets():
    with pytest.raises(SettingsError, match="development defaults"):
        settings.load({**PRODUCTION, "SECRET_KEY": settings.DEV_SECRET_KEY})


def test_bad_numbers_are_named():
    with pytest.raises(SettingsError, match="HOTLINE_RING_SECONDS must be a whole number"):
        settings.load({"HOTLINE_RING_SECONDS": "twenty"})
    with pytest.raises(SettingsError, match="HOTLINE_ACCEPT_SECONDS must be greater than 0"):
        settings.load({"HOTLINE_ACCEPT_SECONDS": "0"})


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for variable, _default, _doc in settings.documented():
        assert f"`{variable}`" in readme, variable


def test_phone_numbers_normalise_to_e164():
    assert phones.normalize("(617) 555-0123") == "+16175550123"
    assert phones.normalize("+44 20 7946 0958") == "+442079460958"
    with pytest.raises(InvalidPhoneNumber, match="not a valid phone number"):
        phones.normalize("+1 555 123 4567")
    with pytest.raises(InvalidPhoneNumber, match="not a phone number"):
        phones.normalize("call me")
    assert phones.try_normalize(None) is None


def test_caller_key_is_keyed():
    a = settings.load({"SECRET_KEY": "one"})
    b = settings.load({"SECRET_KEY": "two"})
    import hashlib
    key = privacy.caller_key("+16175550123", a)
    assert key == privacy.caller_key("+16175550123", a)
    assert key != privacy.caller_key("+16175550123", b)
    assert key != hashlib.sha256(b"+16175550123").hexdigest()


def test_sealed_numbers_open_only_with_the_key():
    from cryptography.fernet import InvalidToken
    a = settings.load({"SECRET_KEY": "one"})
    token = privacy.seal("+16175550123", a)
    assert "6175550123" not in token and privacy.unseal(token, a) == "+16175550123"
    with pytest.raises(InvalidToken):
        privacy.unseal(token, settings.load({"SECRET_KEY": "two"}))


def test_log_records_never_carry_numbers(caplog):
    privacy.install_log_redaction()
    log = logging.getLogger("hotline.test")
    with caplog.at_level(logging.INFO):
        log.info("call from %s to %s at 127.0.0.1", "+16175550123", "617-555-0199")
        try:
            raise ValueError("number +16175550123 failed")
        except ValueError:
            log.exception("boom")
    text = caplog.text
    assert "6175550123" not in text and "555-0199" not in text and "127.0.0.1" in text


def test_flows_load_and_choose():
    f = flows.load(settings.load().IVR_FLOWS_DIR)
    assert f.choose("menu", "en", digits="1") == "talk"
    assert f.choose("menu", "es", speech="quiero hablar") == "talk"
    assert f.choose("menu", "en", speech="blue") is None
    assert "{minutes}" in f.prompts["en"]["callback_promise"]


def _write(tmp_path, mutate):
    data = yaml.safe_load((Path(settings.load().IVR_FLOWS_DIR) / "voice.yaml").read_text())
    mutate(data)
    (tmp_path / "voice.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp_path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["prompts"]["es"].pop("menu"), "prompts.es differs"),
    (lambda d: d["menu"]["callback"].update(digit="1"), "distinct keys"),
    (lambda d: d["prompts"]["en"].update(menu="press {digit}"), "unknown placeholders"),
    (lambda d: d["options"].pop("crisis"), "lacks choices"),
    (lambda d: d["menu"]["talk"]["words"].pop("es"), "no words in 'es'"),
])
def test_broken_flows_fail_at_start_with_a_clear_message(tmp_path, mutate, message):
    with pytest.raises(FlowError, match=message):
        flows.load(_write(tmp_path, mutate))


def test_app_refuses_to_start_on_broken_flows(tmp_path):
    from hotline import create_app
    with pytest.raises(FlowError):
        create_app({"IVR_FLOWS_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:1/0"})


def test_the_stand_in_is_refused_in_production():
    with pytest.raises(SettingsError, match="HOTLINE_SIMULATOR must be off in production"):
        settings.load({**PRODUCTION, "HOTLINE_SIMULATOR": "1"})
    assert not settings.load({}).SIMULATOR
