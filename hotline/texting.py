"""The text path's words, as data: keywords, crisis words and messages from ivr_flows/sms.yaml.

Loaded and validated at start like the voice flows. Classification is pure: it looks
at a body in memory and never keeps it.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from hotline.errors import FlowError
from hotline.flows import check_texts, duration, read_yaml

SMS_FILE = "sms.yaml"
PLACEHOLDERS = {"minutes", "crisis", "program", "coordinator", "status", "offer", "when"}
LANGUAGES = ("en", "es")
KEYWORD_LISTS = ("opt_out", "opt_in", "help", "end_conversation", "supporter_commands")


class Keyword(str, Enum):
    """What a one-word text means before anything else is considered."""
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    END = "end_conversation"


@dataclass(frozen=True)
class TextFlows:
    """Keywords and messages of the text path."""

    program: str
    keywords: dict[str, frozenset[str]]
    crisis_words: dict[str, tuple[str, ...]]
    spanish_words: tuple[str, ...]
    intake: dict[str, str]
    messages: dict[str, dict[str, str]]

    def message(self, lang: str, key: str, **values: Any) -> str:
        """One message in ``lang`` (English when unknown) with placeholders filled."""
        code = lang if lang in self.messages else "en"
        if "minutes" in values:
            values["minutes"] = duration(code, values["minutes"])
        return self.messages[code][key].format(program=self.program, **values)

    def word(self, body: str) -> str:
        """The body as a keyword candidate: one word, upper case, no punctuation."""
        return body.strip().strip(string.punctuation + "¡¿").upper()

    def keyword(self, body: str) -> Keyword | None:
        """The carrier or conversation keyword the whole body is, if any."""
        word = self.word(body)
        for keyword in Keyword:
            if word in self.keywords[keyword.value]:
                return keyword
        return None

    def is_supporter_command(self, body: str) -> bool:
        return self.word(body) in self.keywords["supporter_commands"]

    def is_crisis(self, body: str) -> bool:
        """Whether the text carries a crisis word, in any language."""
        return _any_word(tuple(w for words in self.crisis_words.values() for w in words)
                         ).search(_normalise(body)) is not None

    def language_of(self, body: str) -> str:
        """"es" when the text looks Spanish, else "en"."""
        return "es" if _any_word(self.spanish_words).search(_normalise(body)) else "en"


@functools.lru_cache(maxsize=8)
def _any_word(words: tuple[str, ...]) -> re.Pattern:
    """One pattern matching any of ``words`` as whole words (compiled once per list)."""
    return re.compile("|".join(rf"\b{re.escape(w)}\b" for w in words))


def _normalise(body: str) -> str:
    return " ".join((body or "").lower().split())


def load(folder: str | Path) -> TextFlows:
    """Read and validate ``sms.yaml`` in ``folder``."""
    path = Path(folder) / SMS_FILE
    data = read_yaml(path)
    for name in KEYWORD_LISTS + ("crisis_words", "spanish_words", "intake", "messages"):
        if not data.get(name):
            raise FlowError(f"{path}: '{name}' is missing or empty")
    keywords = {name: frozenset(str(w).upper() for w in data[name]) for name in KEYWORD_LISTS}
    intake = {name: str(digit) for name, digit in data["intake"].items()}
    if set(intake) != {"call", "text", "callback"} or len(set(intake.values())) != 3:
        raise FlowError(f"{path}: intake needs distinct call, text and callback replies")
    _check_messages(path, data["messages"])
    crisis = {lang: tuple(data["crisis_words"].get(lang) or ()) for lang in LANGUAGES}
    if not all(crisis.values()):
        raise FlowError(f"{path}: crisis_words needs words in {LANGUAGES}")
    return TextFlows(program=str(data.get("program") or "Peer Support"), keywords=keywords,
                     crisis_words=crisis, spanish_words=tuple(data["spanish_words"]),
                     intake=intake, messages=data["messages"])


def _check_messages(path: Path, messages: dict) -> None:
    check_texts(path, "messages", messages, list(LANGUAGES), PLACEHOLDERS)
