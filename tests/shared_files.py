"""Twilio's files in ../shared/twilio (never copied into the repository)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_TWILIO = ROOT.parent / "shared" / "twilio"


def twiml_xsd_path() -> Path:
    return Path(os.environ.get("TWILIO_TWIML_XSD", SHARED_TWILIO / "twiml.xsd"))


def openapi_spec_path() -> Path:
    return Path(os.environ.get("TWILIO_OPENAPI_SPEC", SHARED_TWILIO / "twilio_api_v2010.json"))


@lru_cache(maxsize=1)
def _schema():
    from lxml import etree
    path = twiml_xsd_path()
    if not path.exists():
        return None
    return etree.XMLSchema(etree.parse(str(path)))


def assert_valid_twiml(body: str | bytes) -> None:
    """Fail unless ``body`` is TwiML valid against Twilio's schema (skips without the XSD)."""
    from lxml import etree
    schema = _schema()
    document = etree.fromstring(body.encode() if isinstance(body, str) else body)
    assert document.tag == "Response", f"not a TwiML document: {body!r}"
    assert_records_nothing(document)
    if schema is None:
        pytest.skip(f"TwiML schema not found at {twiml_xsd_path()}: validation skipped")
    if not schema.validate(document):
        raise AssertionError(f"TwiML invalid: {schema.error_log}\n{body!r}")


#: Attributes that would make Twilio keep call content.
RECORDING_ATTRIBUTES = {"record", "recordingStatusCallback", "transcribe",
                        "transcribeCallback", "recordingChannels", "recordingTrack"}


def assert_records_nothing(document) -> None:
    """No <Record>, and no recording or transcription attribute on any element."""
    for element in document.iter():
        assert element.tag != "Record", "TwiML records the call"
        bad = RECORDING_ATTRIBUTES & set(element.attrib)
        assert not bad, f"<{element.tag}> asks Twilio to record or transcribe: {bad}"
