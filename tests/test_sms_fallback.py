"""The messaging fallback URL: a short text (how to call, the crisis line) with the database
and Redis down, signature checked."""

from __future__ import annotations

from hotline import create_app
from tests.conftest import PUBLIC_BASE_URL, TwilioClient, settings_for, twiml
from tests.test_resilience import DEAD_POSTGRES, DEAD_REDIS


def test_messaging_fallback_answers_with_database_and_redis_down():
    app = create_app(settings_for(DEAD_POSTGRES, DEAD_REDIS, CRISIS_LINE_NUMBER="988"))
    doc = twiml(TwilioClient(app.test_client()).post(
        "/twilio/sms/fallback", {"MessageSid": "SM1", "From": "+16175550123", "Body": "hi"}))
    message = doc.find("Message")
    assert "Call this number" in message.text and "988" in message.text
    assert message.get("statusCallback") == f"{PUBLIC_BASE_URL}/twilio/sms/status"


def test_messaging_fallback_answers_in_the_texts_language():
    app = create_app(settings_for(DEAD_POSTGRES, DEAD_REDIS))
    doc = twiml(TwilioClient(app.test_client()).post(
        "/twilio/sms/fallback", {"MessageSid": "SM2", "Body": "hola, necesito ayuda"}))
    assert "Llame a este número" in doc.find("Message").text


def test_messaging_fallback_refuses_an_unsigned_request():
    app = create_app(settings_for(DEAD_POSTGRES, DEAD_REDIS))
    response = TwilioClient(app.test_client()).post("/twilio/sms/fallback", {"Body": "x"},
                                                    signature="bogus")
    assert response.status_code == 403
