"""Twilio's contracts for the tests: the project's TwiML schema and Twilio's OpenAPI spec.

Every clone has both: the TwiML schema is the project's own (tests/twilio/twiml.xsd), and the
OpenAPI spec comes with the npm package ``@twilio/cli-core`` that ``make tools`` installs (the
stand-in finds it the same way, :func:`hotline.simulator.spec.spec_path`). Twilio's published
schema in ``../shared/twilio/`` is an extra check where that folder exists, never a need: a
missing optional file skips nothing, and a missing required one fails.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from lxml import etree

from hotline.simulator.spec import spec_path

ROOT = Path(__file__).resolve().parent.parent
OWN_TWIML_XSD = Path(__file__).resolve().parent / "twilio" / "twiml.xsd"
SHARED_TWIML_XSD = ROOT.parent / "shared" / "twilio" / "twiml.xsd"


def openapi_spec_path() -> Path:
    """Twilio's OpenAPI spec (api.twilio.com 2010-04-01); fails when it is not installed."""
    path = spec_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"Twilio's OpenAPI spec not found at {path}: run `make tools` (npm install)")
    return path


@lru_cache(maxsize=1)
def twiml_schemas() -> tuple[tuple[str, etree.XMLSchema], ...]:
    """The project's schema, then Twilio's where ../shared has it (or $TWILIO_TWIML_XSD)."""
    paths = [OWN_TWIML_XSD]
    extra = Path(os.environ.get("TWILIO_TWIML_XSD") or SHARED_TWIML_XSD)
    if extra.is_file():
        paths.append(extra)
    return tuple((str(path), etree.XMLSchema(etree.parse(str(path)))) for path in paths)


def assert_valid_twiml(body: str | bytes) -> None:
    """Fail unless ``body`` is a TwiML document valid against every schema we have, and
    asks Twilio to record or transcribe nothing."""
    document = etree.fromstring(body.encode() if isinstance(body, str) else body)
    assert document.tag == "Response", f"not a TwiML document: {body!r}"
    assert_records_nothing(document)
    for path, schema in twiml_schemas():
        if not schema.validate(document):
            raise AssertionError(f"TwiML invalid against {path}: {schema.error_log}\n{body!r}")


#: Attributes that would make Twilio keep call content.
RECORDING_ATTRIBUTES = {"record", "recordingStatusCallback", "transcribe",
                        "transcribeCallback", "recordingChannels", "recordingTrack"}


def assert_records_nothing(document) -> None:
    """No <Record>, and no recording or transcription attribute on any element (but
    ``record="do-not-record"``, which says so: a debrief's ``<Conference>``)."""
    for element in document.iter():
        assert element.tag != "Record", "TwiML records the call"
        bad = {name for name in RECORDING_ATTRIBUTES & set(element.attrib)
               if not (name == "record" and element.get(name) == "do-not-record")}
        assert not bad, f"<{element.tag}> asks Twilio to record or transcribe: {bad}"
