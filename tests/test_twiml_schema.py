"""The project's TwiML schema (tests/twilio/twiml.xsd): it covers what the stand-in runs and
what the hotline answers with, and refuses what Twilio would use to keep call content."""

from __future__ import annotations

import pytest
from lxml import etree
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from hotline.simulator.twiml_base import ALLOWED
from tests.twilio_files import OWN_TWIML_XSD, assert_valid_twiml, twiml_schemas

XS = "{http://www.w3.org/2001/XMLSchema}"


def own_schema() -> etree.XMLSchema:
    path, schema = twiml_schemas()[0]
    assert path == str(OWN_TWIML_XSD)
    return schema


def test_every_verb_the_stand_in_runs_is_in_the_schema():
    document = etree.parse(str(OWN_TWIML_XSD))
    response = document.find(f"{XS}element[@name='Response']")
    verbs = {el.get("name") for el in response.iter(f"{XS}element")}
    assert set().union(*ALLOWED.values()) <= verbs


def test_a_full_voice_answer_of_every_verb_the_hotline_uses_is_valid():
    twiml = VoiceResponse()
    gather = Gather(input="dtmf speech", num_digits=1, timeout=6, action="https://h.example/a",
                    method="POST", language="es-MX", hints="yes, no", speech_timeout="auto")
    gather.say("Hola", voice="Polly.Mia-Neural", language="es-MX")
    twiml.append(gather)
    twiml.say("Hello", voice="alice", language="en-US")
    twiml.pause(length=8)
    twiml.enqueue("contact-1", action="https://h.example/exit", method="POST",
                  wait_url="https://h.example/wait", wait_url_method="POST")
    dial = Dial(action="https://h.example/d", method="POST", timeout=20,
                caller_id="+16175550100")
    dial.number("+16175550198", url="https://h.example/screen", method="POST")
    dial.number("+16175550199", url="https://h.example/screen", method="POST")
    twiml.append(dial)
    queue_dial = Dial()
    queue_dial.queue("contact-1", url="https://h.example/bridged", method="POST")
    twiml.append(queue_dial)
    twiml.redirect("https://h.example/r", method="POST")
    twiml.leave()
    twiml.hangup()
    assert_valid_twiml(str(twiml))
    text = MessagingResponse()
    text.message("Thank you", to="+16175550142", status_callback="https://h.example/s")
    assert_valid_twiml(str(text))


@pytest.mark.parametrize("body", [
    '<Response><Record maxLength="30"/></Response>',
    '<Response><Dial record="record-from-answer">+16175550198</Dial></Response>',
    '<Response><Dial recordingStatusCallback="https://x.example/r">+1617555</Dial></Response>',
    '<Response><Gather input="speech"><Say transcribe="true">Hi</Say></Gather></Response>',
    '<Response><Say voice="robot">Hi</Say></Response>',
    '<Response><Say bogus="1">Hi</Say></Response>',
    '<Response><Dial><Conference record="record-from-start">room</Conference></Dial></Response>',
    '<Response><Gather method="PUT"/></Response>',
    '<Response><Pause length="-1"/></Response>',
    '<Response><Hangup>now</Hangup></Response>',
])
def test_the_schema_refuses_recording_and_what_twilio_does_not_define(body):
    assert not own_schema().validate(etree.fromstring(body))
