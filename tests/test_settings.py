"""Settings, flows validation, phone numbers and the privacy primitives."""

from __future__ import annotations

import logging
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from hotline.core import flows
from hotline.core import phones
from hotline.privacy import primitives as privacy
from hotline.core import settings
from hotline.core.errors import FlowError, InvalidPhoneNumber, SettingsError

ROOT = Path(__file__).resolve().parent.parent
SEAL_KEY = "RdsqvcyN494K-2FGbojvRshLqpfhtwajlEBg78CyNfw="
#: A production configuration that passes every check (fixed, random-looking values).
PRODUCTION = {"HOTLINE_ENV": "production",
              "TWILIO_ACCOUNT_SID": "AC3f9a0c2e7b41d5869e0f1a2b3c4d5e6f",
              "TWILIO_AUTH_TOKEN": "8d1c4e7f2a9b0c3d6e5f4a1b2c7d8e9f",
              "HOTLINE_NUMBER": "+16175551000", "PUBLIC_BASE_URL": "https://hotline.clinicpeers.org",
              "SECRET_KEY": "q7Zr2VxK9pLm4TnW8cYb3HdF6gJs1AeU5oRi0kQw",
              "HOTLINE_SEAL_KEY": SEAL_KEY,
              "HOTLINE_CALLER_KEY_SECRET": "v1:N3uX8wBv5tCz2yHq7mGk4jDf9sLr6pEa1",
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
    incomplete = {k: v for k, v in PRODUCTION.items()
                  if k not in ("HOTLINE_SEAL_KEY", "HOTLINE_CALLER_KEY_SECRET")}
    with pytest.raises(SettingsError, match="HOTLINE_SEAL_KEY, HOTLINE_CALLER_KEY_SECRET"):
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


#: The settings the README lists, as a program sets them first: those production requires,
#: the environment, the crisis line, the backup numbers and the time zone.
FIRST_TO_SET = {*settings.REQUIRED_IN_PRODUCTION, "ENV", "CRISIS_LINE_NUMBER", "BACKUP_NUMBERS",
                "TIMEZONE"}


def settings_rows() -> list[tuple[str, str]]:
    """(field name, table row) for every setting, as hotline/core/settings.py documents it."""
    names = [f.name for f in fields(settings.Settings)]
    rows = []
    for name, (variable, default, doc) in zip(names, settings.documented(), strict=True):
        default = default.replace(str(settings.ROOT), "<repo>")
        default = "AC000…" if default.startswith("AC000") else default
        shown = f"`{default}`" if default else "(empty)"
        rows.append((name, f"| `{variable}` | {shown} | {doc} |"))
    return rows


def table(rows: list[str]) -> str:
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


def marked_table(path: Path) -> str:
    text = path.read_text()
    return text.split("<!-- settings-table -->\n", 1)[1].split("\n<!-- /settings-table -->")[0]


def test_the_settings_tables_are_the_ones_settings_py_documents():
    """docs/operations.md: every setting, its default and its meaning, exactly; README.md: the
    ones a program sets first, the same rows. A changed meaning (a key that now takes versions,
    an environment that is refused) cannot go stale in either."""
    root = Path(__file__).resolve().parent.parent
    full = table([row for _, row in settings_rows()])
    assert marked_table(root / "docs" / "operations.md") == full, \
        "paste this into docs/operations.md:\n" + full
    first = table([row for name, row in settings_rows() if name in FIRST_TO_SET])
    assert marked_table(root / "README.md") == first, "paste this into README.md:\n" + first
    assert len(FIRST_TO_SET) == first.count("\n") - 1  # every name is a real setting


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


def _write(tmp_path, mutate, name="voice.yaml"):
    """A copy of the shipped flows with ``name`` changed by ``mutate``."""
    folder = tmp_path / "flows"
    shutil.copytree(settings.load().IVR_FLOWS_DIR, folder)
    data = yaml.safe_load((folder / name).read_text())
    mutate(data)
    (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True))
    return folder


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


# --- settings that fail closed ---------------------------------------------------------

@pytest.mark.parametrize("name", ["Production", "prod", "production ", " production",
                                  "PRODUCTION", "dev", "staging", ""])
def test_only_known_environments_are_accepted(name):
    with pytest.raises(SettingsError, match="HOTLINE_ENV must be exactly one of "
                                            "development, test, production; got"):
        settings.load({**PRODUCTION, "HOTLINE_ENV": name})
    with pytest.raises(SettingsError, match="HOTLINE_ENV must be exactly one of"):
        settings.load({"HOTLINE_ENV": name})


def _example_env() -> dict[str, str]:
    lines = (ROOT / "config" / "hotline.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_example_env_file_is_refused_as_it_is():
    example = _example_env()
    assert example["HOTLINE_ENV"] == "production" and "SECRET_KEY" in example
    with pytest.raises(SettingsError):
        settings.load(example)


@pytest.mark.parametrize("variable, message", [
    ("TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID must be the account's SID"),
    ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN is a placeholder"),
    ("HOTLINE_NUMBER", "HOTLINE_NUMBER is a fictional 555-01xx number"),
    ("PUBLIC_BASE_URL", "PUBLIC_BASE_URL is a placeholder host"),
    ("SECRET_KEY", "SECRET_KEY is a placeholder"),
    ("HOTLINE_SEAL_KEY", "HOTLINE_SEAL_KEY: entry 1 is not a Fernet key"),
    ("HOTLINE_CALLER_KEY_SECRET", r"HOTLINE_CALLER_KEY_SECRET \(newest\) is a placeholder"),
    ("BACKUP_NUMBERS", "BACKUP_NUMBERS is a fictional 555-01xx number"),
])
def test_each_placeholder_of_the_example_is_refused(variable, message):
    """One value of the example file in an otherwise sound production configuration."""
    with pytest.raises(SettingsError, match=message):
        settings.load({**PRODUCTION, variable: _example_env()[variable]})


@pytest.mark.parametrize("variable, value, message", [
    ("SECRET_KEY", "x", "SECRET_KEY is a placeholder"),
    ("SECRET_KEY", "s" * 64, "SECRET_KEY is a placeholder"),
    ("SECRET_KEY", "k3J9x2Lq8PzR4tYw1VbN", "SECRET_KEY is too short: at least 32"),
    ("SECRET_KEY", settings.DEV_SECRET_KEY, "development defaults"),
    ("TWILIO_AUTH_TOKEN", "real-token", "TWILIO_AUTH_TOKEN is too short"),
    ("HOTLINE_CALLER_KEY_SECRET", "v1:k3J9x2Lq8PzR4tYw1VbN", "too short"),
    ("HOTLINE_CALLER_KEY_SECRET", "v2:insecure-but-long-enough-0123456789", "placeholder"),
    ("HOTLINE_CALLER_KEY_SECRET", "derived", "not derived from SECRET_KEY"),
    ("HOTLINE_SEAL_KEY", "derived", "not derived from SECRET_KEY"),
    ("HOTLINE_CALLER_KEY_SECRET", PRODUCTION["SECRET_KEY"], "must be different secrets"),
])
def test_short_placeholder_and_shared_secrets_are_refused_in_production(variable, value,
                                                                        message):
    with pytest.raises(SettingsError, match=message):
        settings.load({**PRODUCTION, variable: value})


def test_secrets_are_never_named_in_the_refusal():
    secret = "v1:Tiny-but-secret"
    with pytest.raises(SettingsError) as refused:
        settings.load({**PRODUCTION, "HOTLINE_CALLER_KEY_SECRET": secret})
    assert "Tiny-but-secret" not in str(refused.value)


@pytest.mark.parametrize("variable", ["PUBLIC_BASE_URL", "TWILIO_API_BASE_URL"])
@pytest.mark.parametrize("url", ["http://hotline.clinicpeers.org", "hotline.clinicpeers.org",
                                 "ftp://hotline.clinicpeers.org", "https://"])
def test_production_urls_must_be_https(variable, url):
    with pytest.raises(SettingsError, match=f"{variable} must be an https:// URL in production"):
        settings.load({**PRODUCTION, variable: url})


@pytest.mark.parametrize("variable, value, message", [
    ("HOTLINE_SEAL_KEY", "not-a-fernet-key", "HOTLINE_SEAL_KEY: entry 1 is not a Fernet key"),
    ("HOTLINE_SEAL_KEY", SEAL_KEY + ",AAAA", "HOTLINE_SEAL_KEY: entry 2 is not a Fernet key"),
    ("HOTLINE_SEAL_KEY", f"{SEAL_KEY},{SEAL_KEY}", "the same key is listed twice"),
    ("HOTLINE_SEAL_KEY", "derived,derived", "the same key is listed twice"),
    ("HOTLINE_CALLER_KEY_SECRET", "v2:new-secret,v1:old,v2:other", "version v2 is listed twice"),
    ("HOTLINE_CALLER_KEY_SECRET", "legacy-secret,v1:new,derived", "unversioned is listed twice"),
    ("HOTLINE_CALLER_KEY_SECRET", "v0:secret", "bad version"),
    ("HOTLINE_CALLER_KEY_SECRET", "v2:,v1:x", "entry 1 is empty"),
])
def test_every_key_is_checked_at_start_up(variable, value, message):
    """Outside production too: a bad key refuses to start, not at the first seal()."""
    with pytest.raises(SettingsError, match=message):
        settings.load({variable: value})
    from hotline import create_app
    name = {"HOTLINE_SEAL_KEY": "SEAL_KEY", "HOTLINE_CALLER_KEY_SECRET": "CALLER_KEY_SECRET"}
    with pytest.raises(SettingsError, match=message):
        create_app({name[variable]: value, "REDIS_URL": "redis://127.0.0.1:1/0"})


def test_a_sound_production_configuration_starts():
    cfg = settings.load(PRODUCTION)
    assert cfg.is_production and cfg.SEAL_KEY == SEAL_KEY


@pytest.mark.parametrize("env, url", [
    ("test", "https://hotline.example.org"),       # the test suite's own base URL
    ("development", "http://10.0.0.5:5000"),
    ("development", "http://hotline.lan:5000"),
    ("development", "https://hotline.clinicpeers.org"),
])
def test_the_stand_in_is_refused_off_a_loopback_base_url(env, url):
    with pytest.raises(SettingsError, match="HOTLINE_SIMULATOR needs a loopback PUBLIC_BASE_URL"):
        settings.load({"HOTLINE_ENV": env, "PUBLIC_BASE_URL": url, "HOTLINE_SIMULATOR": "1"})


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "http://localhost:8000",
                                 "http://[::1]:5000", "http://127.0.0.2"])
def test_the_stand_in_runs_on_loopback_in_development_and_test(url):
    for env in ("development", "test"):
        cfg = settings.load({"HOTLINE_ENV": env, "PUBLIC_BASE_URL": url,
                             "HOTLINE_SIMULATOR": "1"})
        assert cfg.SIMULATOR


def test_demo_seed_refuses_in_production(database_url, redis_server):
    """A known coordinator password and a fictional roster must never reach a real program."""
    import dataclasses

    from sqlalchemy import func, select

    from hotline import create_app
    from hotline.core.extensions import db
    from hotline.models import Supporter, User
    from tests.conftest import _empty_tables
    cfg = settings.load(PRODUCTION).replace(DATABASE_URL=database_url, REDIS_URL=redis_server.url)
    app = create_app(dataclasses.asdict(cfg))
    with app.app_context():
        _empty_tables()
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code != 0 and "refuses to run in production" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
        assert db.session.scalar(select(func.count()).select_from(Supporter)) == 0
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("key", [
    "A" * 43 + "=",                                           # 32 zero bytes
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",           # b"0123456789abcdef" twice
])
def test_a_seal_key_that_is_no_random_key_is_refused_in_production(key):
    """A well-formed Fernet key is not enough: one anybody could guess (zeros, a short
    pattern repeated) seals nothing (before: accepted, as any 32 bytes were)."""
    with pytest.raises(SettingsError, match="HOTLINE_SEAL_KEY") as refused:
        settings.load({**PRODUCTION, "HOTLINE_SEAL_KEY": key})
    assert key not in str(refused.value)
