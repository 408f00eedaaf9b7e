"""Text messages: outgoing ones (REST, ``<Message>`` in a call) and texts phones send in.

A text from a phone to a hotline number is kept in ``sim.messages`` (direction
``inbound``, status ``received``; pictures as Media, listed under the message until
deleted) and posted to the number's ``sms_url`` with Twilio's messaging webhook
parameters; each ``<Message>`` of the TwiML reply is then sent like a
REST-created message (``sent`` 1 s later, ``delivered`` to the phone at 2 s). Bodies never
go into the events log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from lxml import etree

from hotline.simulator.core import Sim
from hotline.simulator.state import API_VERSION
from hotline.simulator.twiml_base import TwimlError, parse_twiml, tag_of, text_of

#: ``<Redirect>`` s followed in a row for one incoming text before giving up.
MAX_SMS_REDIRECTS = 10


class Texting:
    """The messaging half of ``TwilioSim``."""

    def create_message(
        self: Sim, *, to: str, from_: str, body: str, status_callback: str | None = None,
        direction: str = "outbound-api",
    ) -> dict[str, Any]:
        """Record an SMS; it is ``sent`` 1 s later and ``delivered`` (to the phone) at 2 s."""
        with self.lock:
            message = {
                "sid": self.new_sid("SM"), "to": to, "from": from_, "body": body,
                "status": "queued", "direction": direction, "created_at": self.now,
                "status_callback": status_callback, "media": [], "num_media": 0,
            }
            self.messages.append(message)
        self.log("message", sid=message["sid"], to=to, from_=from_, direction=direction)
        # What the handset gets is what left: Twilio's log may be blanked once ``sent``.
        handset = dict(message)
        self.schedule(1, lambda: self._message_progress(message, "sent"))
        self.schedule(2, lambda: self._message_progress(message, "delivered", handset))
        return message

    def find_message(self: Sim, sid: str) -> dict[str, Any] | None:
        """The recorded message with ``sid`` (None if unknown or deleted)."""
        with self.lock:
            return next((m for m in self.messages if m["sid"] == sid), None)

    def send_sms(self: Sim, from_number: str, to_number: str, body: str,
                 media: tuple[str, ...] = ()) -> dict[str, Any]:
        """A phone texts a hotline number (thread-safe): kept now, posted to ``sms_url``.

        ``media`` are the content types of attached pictures or files (an MMS: sid ``MM``).
        Raises ``ValueError`` if ``to_number`` is not a hotline number, or if there is
        neither a body nor media. The sending phone (if registered) keeps its own copy in
        ``phone.sent``.
        """
        if to_number not in self.numbers:
            raise ValueError(f"{to_number} is not one of the hotline numbers")
        if not body.strip() and not media:
            raise ValueError("a text message needs a body")
        with self.lock:
            sid = self.new_sid("MM" if media else "SM")
            message = {
                "sid": sid, "to": to_number, "from": from_number, "body": body,
                "status": "received", "direction": "inbound", "created_at": self.now,
                "status_callback": None, "num_media": len(media),
                "media": [{"sid": self.new_sid("ME"), "content_type": kind,
                           "created_at": self.now} for kind in media],
            }
            self.messages.append(message)
            self.log("message", sid=message["sid"], to=to_number, from_=from_number,
                     direction="inbound")
            phone = self.phones.get(from_number)
            if phone is not None:
                phone.on_sent(dict(message))
            self.schedule(0, lambda: self._receive_sms(message))
        return message

    def sms_params(self: Sim, message: dict[str, Any]) -> dict[str, str]:
        """Twilio's messaging webhook parameters for an incoming ``message``."""
        params = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION,
            "MessageSid": message["sid"], "SmsSid": message["sid"],
            "SmsMessageSid": message["sid"], "From": message["from"], "To": message["to"],
            "Body": message["body"], "NumMedia": str(len(message["media"])),
            "NumSegments": "1", "SmsStatus": "received",
        }
        for i, item in enumerate(message["media"]):
            params[f"MediaUrl{i}"] = self.media_url(message, item)
            params[f"MediaContentType{i}"] = item["content_type"]
        return params

    def media_url(self: Sim, message: dict[str, Any], item: dict[str, Any]) -> str:
        """Where Twilio serves a media item (its public API address, as in its webhooks)."""
        return (f"https://api.twilio.com/{API_VERSION}/Accounts/{self.account_sid}"
                f"/Messages/{message['sid']}"
                f"/Media/{item['sid']}")

    def _receive_sms(self: Sim, message: dict[str, Any]) -> None:
        """Post the incoming text to ``sms_url`` and send the replies (loop only)."""
        if not self.sms_url:
            return  # a number without a messaging webhook: Twilio keeps the text, nothing else
        params, url = self.sms_params(message), self.sms_url
        for _ in range(MAX_SMS_REDIRECTS):
            status, body = self.post(url, params)
            if not 200 <= status < 300:
                self.log("error", sid=message["sid"], url=url, detail="error 11200")
                return
            url = self._run_messaging_twiml(message, url, body)
            if url is None:
                return
        self.log("error", sid=message["sid"], url=url, detail="redirect loop")

    def _run_messaging_twiml(self: Sim, message: dict[str, Any], url: str,
                             body: str) -> str | None:
        """Send each ``<Message>`` of a reply; the URL of a ``<Redirect>`` (None: done)."""
        if not body.strip():
            return None  # an empty 2xx: no reply
        try:
            verbs = parse_twiml(body)
        except TwimlError:
            self.log("error", sid=message["sid"], url=url, detail="error 12100")
            return None
        for el in verbs:
            if tag_of(el) == "Redirect":
                return urljoin(url, text_of(el))
            if tag_of(el) != "Message":
                self.log("error", sid=message["sid"], url=url,
                         detail=f"<{tag_of(el)}> not allowed in a messaging response")
                continue
            callback = el.get("statusCallback") or el.get("action")
            self.create_message(
                to=el.get("to") or message["from"], from_=el.get("from") or message["to"],
                body=message_body(el), direction="outbound-reply",
                status_callback=urljoin(url, callback) if callback else None,
            )
        return None

    def _message_progress(self: Sim, message: dict[str, Any], status: str,
                          handset: dict[str, Any] | None = None) -> None:
        if message not in self.messages:
            return
        message["status"] = status
        if status == "delivered":
            phone = self.phones.get(message["to"])
            if phone is not None:
                phone.on_message(dict(handset or message, status=status))
        self.log("status", sid=message["sid"], event=status)
        if message.get("status_callback"):
            self.post(message["status_callback"], {
                "AccountSid": self.account_sid, "ApiVersion": API_VERSION,
                "MessageSid": message["sid"], "SmsSid": message["sid"],
                "MessageStatus": status, "SmsStatus": status,
                "From": message["from"], "To": message["to"],
            })


def message_body(el: etree._Element) -> str:
    """The text of a ``<Message>``: its ``<Body>`` child if it has one, else its own text."""
    bodies = [child for child in el if isinstance(child.tag, str) and tag_of(child) == "Body"]
    if bodies:
        return text_of(bodies[0])
    return " ".join((el.text or "").split())
