"""Twilio itself: the one REST client (``api``), X-Twilio-Signature on every webhook
(``signature``), one effect per retried delivery (``idempotency``) and the TwiML building
blocks (``twiml``, built only with twilio's TwiML classes).
"""
