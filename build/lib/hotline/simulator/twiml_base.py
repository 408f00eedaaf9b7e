"""What every part of the TwiML interpreter shares: modes, limits, parsing helpers.

Kept apart so the verb families (``twiml``, ``twiml_gather``, ``twiml_dial``) and the
messaging side can import them without importing each other; ``Runner`` is the
interpreter as its verb families see it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol
from urllib.parse import urljoin

from lxml import etree

from hotline.simulator.core import Sim
from hotline.simulator.state import Fetch, Leg

#: Seconds a wait-document loop takes at least, so an empty wait document cannot spin.
MIN_WAIT_LOOP = 1.0
#: Documents fetched in a row without time passing before we call it a redirect loop.
MAX_INSTANT_FETCHES = 25
#: Seconds of speech per character of ``<Say>`` text (15 characters a second, 1 s minimum).
SAY_CHARS_PER_SECOND = 15
PLAY_SECONDS = 2.0
#: Twilio's ``<Dial timeLimit>`` default: four hours.
DIAL_TIME_LIMIT = 14400.0
LEAVE = "leave"
END = "end"


class Mode(Enum):
    """Where a document runs; it decides which verbs are allowed and what "the end" means."""

    CALL = "call"          # the leg's own program: the end hangs up
    WAIT = "wait"          # an <Enqueue waitUrl>: the end requests waitUrl again
    WHISPER = "whisper"    # a <Number url> on the called leg: the end connects
    ANNOUNCE = "announce"  # a <Queue url> on the dequeued caller: the end connects


PROMPTS = frozenset({"Say", "Play", "Pause"})
ALLOWED = {
    Mode.CALL: PROMPTS | {"Gather", "Redirect", "Hangup", "Reject", "Enqueue", "Dial",
                          "Leave", "Message", "Sms"},
    Mode.WAIT: PROMPTS | {"Gather", "Redirect", "Hangup", "Leave"},
    Mode.WHISPER: PROMPTS | {"Gather", "Redirect", "Hangup"},
    Mode.ANNOUNCE: PROMPTS | {"Redirect", "Hangup"},
}


class TwimlError(ValueError):
    """The body is not a TwiML ``<Response>``."""


@dataclass(frozen=True)
class Context:
    """The document being run: its URL (for relative URLs, Gather's default action) and mode."""

    url: str
    mode: Mode

    def resolve(self, url: str) -> str:
        """``url`` made absolute against the document's URL."""
        return urljoin(self.url, url.strip())


def parse_twiml(body: str) -> list[etree._Element]:
    """The verbs of a TwiML document, in order; raises ``TwimlError``."""
    try:
        root = etree.fromstring(body.strip().encode())
    except (etree.XMLSyntaxError, ValueError) as error:
        raise TwimlError(str(error)) from error
    if tag_of(root) != "Response":
        raise TwimlError(f"root element is <{tag_of(root)}>, not <Response>")
    return [el for el in root if isinstance(el.tag, str)]


def tag_of(el: etree._Element) -> str:
    """Element name without namespace."""
    return etree.QName(el).localname


def text_of(el: etree._Element) -> str:
    """All text inside ``el`` (SSML included), whitespace collapsed."""
    return " ".join("".join(el.itertext()).split())


def loops(el: etree._Element) -> Iterable[int]:
    """Iterations for a ``loop`` attribute (``0`` means forever)."""
    count = int(el.get("loop", "1"))
    return itertools.count() if count == 0 else range(count)


class Runner(Protocol):
    """What ``GatherVerbs`` and ``DialVerbs`` use of the ``Interpreter`` they are part of."""

    sim: Sim
    verbs: dict[str, Callable[..., Generator]]

    def run_program(self, leg: Leg, fetch: Fetch, mode: Mode = Mode.CALL) -> Generator: ...
    def app_error(self, leg: Leg, url: str, detail: str) -> None: ...
    def post_ignored(self, leg: Leg, fetch: Fetch | None) -> None: ...
    def hear(self, leg: Leg, kind: str, text: str) -> None: ...
