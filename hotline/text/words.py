"""The text path's words, as data: keywords, commands, crisis words and messages from
ivr_flows/sms.yaml.

Loaded and validated at start like the voice flows: every message the code sends
(``MESSAGES``) and every supporter command (``SUPPORTER_COMMANDS``) must be there, in every
language of ivr_flows/languages.yaml. Classification is pure: it looks at a body in memory
and never keeps it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import string
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from hotline.core.errors import FlowError
from hotline.core.flows import DEFAULT_LANGUAGE, Language, check_texts, load_languages, read_yaml

SMS_FILE = "sms.yaml"
PLACEHOLDERS = {"minutes", "crisis", "program", "coordinator", "status", "offer", "when",
                "name", "names", "count", "roles", "units", "role"}
KEYWORD_LISTS = ("opt_out", "opt_in", "help", "end_conversation")
#: Every message the code texts (hotline/conversations.py, hotline/webhooks/sms.py,
#: workers/): each must exist in every language.
MESSAGES = frozenset({
    "intake", "intake_again", "crisis", "finding_text", "finding_call", "missed_call",
    "still_finding", "connected_clinician", "nobody", "callback", "callback_at",
    "callback_later", "ended", "ended_idle", "ended_supporter", "ended_idle_supporter",
    "text_only", "opted_out", "opted_in", "help", "empty", "offer", "offer_call",
    "offer_taken", "offer_expired", "connected_supporter", "supporter_help",
    "supporter_status", "supporter_on", "supporter_off", "supporter_schedule", "no_offer",
    "sorry", "fallback", "match_help", "match_role_set", "match_unit_set",
    "care_thanks", "care_cooldown", "care_cap", "care_paused", "care_ready",
    "care_quiet_on", "care_quiet_off",
    "training_lapsed", "training_none", "training_reminder", "training_digest",
    "training_digest_lapsed", "training_digest_due", "training_digest_none",
    "training_digest_more",
    "refer_help", "refer_sent", "outreach_offer", "outreach_no"})
#: The match request's words (``match_words`` in sms.yaml): ask how, a role, a unit.
MATCH_WORDS = ("ask", "role", "unit")


class Keyword(str, Enum):
    """What a one-word text means before anything else is considered."""
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    END = "end_conversation"


class Command(str, Enum):
    """A supporter's one-word command; its words are ``supporter_commands`` in sms.yaml."""
    ON = "on"
    OFF = "off"
    SCHEDULE = "schedule"
    STATUS = "status"
    TAKE = "take"            # YES: take the open request
    PASS = "pass"
    END = "end"              # ends their conversation (outside one: the help)
    HELP = "help"
    SUPPORT = "support"      # they need support themselves: treated as a clinician
    READY = "ready"          # their cool-down after a contact ends now (hotline.roster.care)
    QUIET = "quiet"          # the thank-you texts after contacts off, or on again


SUPPORTER_COMMANDS = tuple(command.value for command in Command)


@dataclass(frozen=True)
class TextFlows:
    """Keywords, commands and messages of the text path."""

    program: str
    keywords: dict[str, frozenset[str]]
    commands: dict[Command, tuple[str, ...]]
    crisis_words: dict[str, tuple[str, ...]]
    language_words: dict[str, tuple[str, ...]]
    intake: dict[str, str]
    messages: dict[str, dict[str, str]]
    languages: dict[str, Language]
    match_words: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    #: ``refer_words``: the word that starts a referral, by language.
    refer_words: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def referral(self, body: str) -> tuple[str, str, str | None] | None:
        """A referral text's (language of its word, the number as typed, the language code
        asked for or None); None when the text does not start with a refer word."""
        tokens = [t.strip(string.punctuation.replace("+", "") + "¡¿")
                  for t in (body or "").split()]
        if not tokens:
            return None
        lang = next((code for code, words in self.refer_words.items()
                     if tokens[0].upper() in words), None)
        if lang is None:
            return None
        asked = next((t.lower() for t in tokens[1:] if t.lower() in self.languages), None)
        number = " ".join(t for t in tokens[1:] if t.lower() not in self.languages)
        return lang, number, asked

    def match_request(self, body: str) -> dict[str, str] | None:
        """A match request's parts: {"ask": ""} for the ask word, and the words after a
        role word ("role") or a unit word ("unit"), up to the other; None if neither."""
        tokens = [t.strip(string.punctuation + "¡¿") for t in (body or "").split()]
        found: dict[str, list[str]] = {}
        current = None
        for token in tokens:
            kind = next((k for k, words in self.match_words.items()
                         if token.upper() in words), None)
            if kind is not None:
                current = kind
                found.setdefault(kind, [])
            elif current is not None:
                found[current].append(token)
        return {kind: " ".join(words) for kind, words in found.items()} or None

    def message(self, lang: str, key: str, **values: Any) -> str:
        """One message in ``lang`` (the default language when unknown), placeholders filled."""
        code = lang if lang in self.messages else DEFAULT_LANGUAGE
        if "minutes" in values:
            values["minutes"] = self.languages[code].duration(values["minutes"])
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

    def command(self, body: str) -> Command | None:
        """The supporter command the whole body is, if any."""
        word = self.word(body)
        for command, words in self.commands.items():
            if word in words:
                return command
        return None

    def command_word(self, command: Command) -> str:
        """The word replies use for ``command`` (its first): "ON"."""
        return self.commands[command][0]

    def is_crisis(self, body: str) -> bool:
        """Whether the text carries a crisis word, in any language."""
        return _any_word(tuple(w for words in self.crisis_words.values() for w in words)
                         ).search(_normalise(body)) is not None

    def language_of(self, body: str) -> str:
        """The language whose words the text uses ("es"), else the default one."""
        text = _normalise(body)
        for code, words in self.language_words.items():
            if _any_word(words).search(text):
                return code
        return DEFAULT_LANGUAGE


@functools.lru_cache(maxsize=8)
def _any_word(words: tuple[str, ...]) -> re.Pattern:
    """One pattern matching any of ``words`` as whole words (compiled once per list)."""
    return re.compile("|".join(rf"\b{re.escape(w)}\b" for w in words))


def _normalise(body: str) -> str:
    return " ".join((body or "").lower().split())


def load(folder: str | Path, languages: dict[str, Language] | None = None) -> TextFlows:
    """Read and validate ``sms.yaml`` in ``folder`` (languages from ``languages.yaml``)."""
    path = Path(folder) / SMS_FILE
    data = read_yaml(path)
    languages = languages if languages is not None else load_languages(folder)
    for name in KEYWORD_LISTS + ("supporter_commands", "crisis_words", "language_words",
                                 "intake", "messages"):
        if not data.get(name):
            raise FlowError(f"{path}: '{name}' is missing or empty")
    keywords = {name: _words(path, name, data[name]) for name in KEYWORD_LISTS}
    intake = {name: str(digit) for name, digit in data["intake"].items()}
    if set(intake) != {"call", "text", "callback"} or len(set(intake.values())) != 3:
        raise FlowError(f"{path}: intake needs distinct call, text and callback replies")
    check_texts(path, "messages", data["messages"], languages, PLACEHOLDERS, MESSAGES)
    crisis = _per_language(path, "crisis_words", data["crisis_words"], languages, every=True)
    guess = _per_language(path, "language_words", data["language_words"], languages)
    if DEFAULT_LANGUAGE in guess:
        raise FlowError(f"{path}: language_words.{DEFAULT_LANGUAGE}: a text with no "
                        f"other language's words is already {DEFAULT_LANGUAGE}")
    match_words = data.get("match_words")
    if not isinstance(match_words, dict) or set(match_words) != set(MATCH_WORDS):
        raise FlowError(f"{path}: match_words must give words for {list(MATCH_WORDS)}")
    match = {kind: _words(path, f"match_words.{kind}", match_words[kind])
             for kind in MATCH_WORDS}
    # Languages without refer words refer in another's (a language added alone still loads).
    refer = _per_language(path, "refer_words", data.get("refer_words") or {}, languages)
    commands = _commands(path, data["supporter_commands"])
    # A carrier's opt-out word opts the sender out at the carrier whoever sends it, so it can
    # never be a supporter's command: a supporter would be cut off believing they had sent one.
    clash = sorted(keywords["opt_out"] & {w for words in commands.values() for w in words})
    if clash:
        raise FlowError(f"{path}: supporter_commands: {', '.join(clash)} is a carrier opt-out "
                        f"word (opt_out): a supporter who sent it would be opted out")
    return TextFlows(program=str(data.get("program") or "Peer Support"), keywords=keywords,
                     match_words=match,
                     refer_words={code: frozenset(w.upper() for w in words)
                                  for code, words in refer.items()},
                     commands=commands,
                     crisis_words=crisis, language_words=guess, intake=intake,
                     messages=data["messages"], languages=languages)


def _words(path: Path, name: str, raw: Any) -> frozenset[str]:
    if not isinstance(raw, list) or not raw or not all(str(w).strip() for w in raw):
        raise FlowError(f"{path}: {name} must be a list of words")
    return frozenset(str(w).strip().upper() for w in raw)


def _commands(path: Path, raw: Any) -> dict[Command, tuple[str, ...]]:
    """Every command with its words, no word meaning two commands."""
    if not isinstance(raw, dict):
        raise FlowError(f"{path}: supporter_commands must map each of "
                        f"{list(SUPPORTER_COMMANDS)} to its words")
    unknown = set(map(str, raw)) - set(SUPPORTER_COMMANDS)
    if unknown:
        raise FlowError(f"{path}: supporter_commands has unknown commands {sorted(unknown)} "
                        f"(YAML reads a bare on/off as true/false: quote them)")
    out: dict[Command, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for command in Command:
        if command.value not in raw:
            raise FlowError(f"{path}: supporter_commands.{command.value} is missing")
        words = tuple(dict.fromkeys(_ordered_words(path, f"supporter_commands.{command.value}",
                                                   raw[command.value])))
        for word in words:
            if word in seen:
                raise FlowError(f"{path}: supporter_commands: {word} means both "
                                f"{seen[word]} and {command.value}")
            seen[word] = command.value
        out[command] = words
    return out


def _ordered_words(path: Path, name: str, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(
            isinstance(w, str) and w.strip() for w in raw):
        raise FlowError(f"{path}: {name} must be a list of words (quote YES, NO, ON, OFF)")
    return [w.strip().upper() for w in raw]


def _per_language(path: Path, name: str, raw: Any, languages: dict[str, Language],
                  every: bool = False) -> dict[str, tuple[str, ...]]:
    """Words by language: only offered languages, and (``every``) each of them."""
    if not isinstance(raw, dict):
        raise FlowError(f"{path}: {name} must map languages to words")
    unknown = set(raw) - set(languages)
    if unknown:
        raise FlowError(f"{path}: {name} has languages {sorted(unknown)} that "
                        f"languages.yaml does not offer")
    out = {code: tuple(str(w) for w in raw.get(code) or ()) for code in languages
           if every or code in raw}
    empty = [code for code, words in out.items() if not words]
    if empty:
        raise FlowError(f"{path}: {name} needs words in {sorted(empty)}")
    return out
