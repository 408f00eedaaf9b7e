"""The IVR flows in ``ivr_flows/``: loaded once, validated, then read-only.

``languages.yaml`` is the one list of the languages the program offers (each with its
voice and its words for a duration); every other file there must have its words in each
of them, and supporters choose theirs among them (``offered``). A missing prompt in one
language, a prompt the code needs that no language has, a duplicated digit or an unknown
placeholder fails the app at start with a message naming the file and key, never mid-call.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flask import current_app

from hotline.core.errors import FlowError

VOICE_FILE = "voice.yaml"
LANGUAGES_FILE = "languages.yaml"
#: The language every contact starts in and every lookup falls back to (the database's
#: default too): languages.yaml must list it.
DEFAULT_LANGUAGE = "en"
#: Placeholders a prompt may use; anything else is a typo caught at start.
PLACEHOLDERS = {"minutes", "crisis", "when", "label", "number"}
#: Every prompt the code speaks (hotline/webhooks/): each must exist in every language.
PROMPTS = frozenset({
    "greeting", "menu", "no_input", "unknown", "connecting", "wait", "bridged", "options",
    "options_hold", "callback_promise", "callback_promise_at", "callback_promise_later",
    "weekdays", "callback_no_number", "crisis_transfer", "crisis_failed", "goodbye",
    "technical", "offer_intro", "offer_intro_callback", "offer_taken", "offer_declined",
    "offer_connecting", "offer_ended", "fallback_screen", "peer_calling",
    "match", "match_role", "match_unit", "match_item", "match_role_set", "match_unit_set",
    "match_fallback",
    "debrief_code", "debrief_wrong", "debrief_early", "debrief_limited", "debrief_joining",
    "debrief_facilitator", "debrief_hold", "debrief_warning", "debrief_ended",
    "refer_ask", "refer_sent", "refer_invalid"})
#: Fields of a language in languages.yaml. "{minutes}" is filled with a whole duration
#: ("1 minute", "5 minutos"), never a bare number, so the grammar is right for 1: each
#: language gives the unit's singular and plural.
LANGUAGE_FIELDS = ("name", "say", "voice", "speech", "minutes")
#: Menus the voice path needs, with the choices each must offer.
REQUIRED_MENUS = {"menu": {"talk", "callback", "match", "language", "crisis", "join", "refer"},
                  "options": {"keep_waiting", "callback", "crisis"},
                  "match": {"role", "unit", "both"}}


@dataclass(frozen=True)
class Language:
    code: str
    say: str       # BCP-47 code for <Say language>
    voice: str     # <Say voice>
    speech: str    # <Gather language> for speech recognition
    name: str
    minute_words: tuple[str, str] = ("minute", "minutes")  # singular, plural

    def duration(self, minutes: int) -> str:
        """``minutes`` as words: "1 minute", "5 minutos"."""
        one, many = self.minute_words
        return f"{minutes} {one if minutes == 1 else many}"


@dataclass(frozen=True)
class Flows:
    """Menus, prompts and languages of the voice path."""

    languages: dict[str, Language]
    menus: dict[str, dict[str, dict[str, Any]]]
    prompts: dict[str, dict[str, Any]]

    default_language: str = DEFAULT_LANGUAGE

    def language(self, code: str | None) -> Language:
        """The language ``code``, or the default one when unknown."""
        return self.languages.get(code or "", self.languages[self.default_language])

    def prompt(self, lang: str, key: str, **values: Any) -> str:
        """One prompt in ``lang`` with its placeholders filled."""
        code = self.language(lang).code
        text = self.prompts[code][key]
        if "minutes" in values:
            values["minutes"] = self.languages[code].duration(values["minutes"])
        return text.format(**values) if values else text

    def wait_message(self, lang: str, turn: int) -> str:
        """The reassurance for the ``turn``-th wait loop (they rotate)."""
        messages = self.prompts[self.language(lang).code]["wait"]
        return messages[turn % len(messages)]

    def key(self, menu: str, digits: str = "") -> str | None:
        """The choice named by a key press (the same in every language), or None."""
        digits = (digits or "").strip()
        for name, choice in self.menus[menu].items():
            if digits and digits == choice["digit"]:
                return name
        return None

    def choose(self, menu: str, lang: str, digits: str = "", speech: str = "") -> str | None:
        """The choice named by a key press or by words heard, or None."""
        by_key, heard = self.key(menu, digits), (speech or "").strip().lower()
        if by_key is not None:
            return by_key
        code = self.language(lang).code
        if heard:  # crisis words win over any other words heard in the same sentence
            ordered = sorted(self.menus[menu].items(), key=lambda item: item[0] != "crisis")
            for name, choice in ordered:
                if any(word in heard for word in choice["words"].get(code, [])):
                    return name
        return None

    def hints(self, menu: str, lang: str) -> str:
        """Speech hints for ``<Gather hints>``: the words of every choice."""
        code = self.language(lang).code
        words = [w for choice in self.menus[menu].values() for w in choice["words"].get(code, [])]
        return ", ".join(words)


def current() -> Flows:
    """The validated flows of the current app."""
    return current_app.extensions["hotline.flows"]


def offered() -> tuple[str, ...]:
    """The codes of the languages the current app offers, in languages.yaml's order."""
    return tuple(current().languages)


def duration(lang: str, minutes: int) -> str:
    """``minutes`` as words in ``lang`` (the default language when unknown)."""
    return current().language(lang).duration(minutes)


def read_yaml(path: Path) -> dict:
    """A flows file as a mapping, or FlowError naming the file and what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FlowError(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise FlowError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FlowError(f"{path}: expected a mapping at the top")
    return data


def load(folder: str | Path, languages: dict[str, Language] | None = None) -> Flows:
    """Read and validate ``voice.yaml`` in ``folder`` (languages from ``languages.yaml``)."""
    path = Path(folder) / VOICE_FILE
    data = read_yaml(path)
    if "languages" in data:  # an older voice.yaml: one list only, or they drift apart
        raise FlowError(f"{path}: 'languages' belongs in {LANGUAGES_FILE} now")
    languages = languages if languages is not None else load_languages(folder)
    menus = {name: _menu(path, name, data.get(name), languages, required)
             for name, required in REQUIRED_MENUS.items()}
    prompts = _prompts(path, data.get("prompts"), languages)
    return Flows(languages=languages, menus=menus, prompts=prompts)


def load_languages(folder: str | Path) -> dict[str, Language]:
    """Read and validate ``languages.yaml``: the languages the program offers."""
    path = Path(folder) / LANGUAGES_FILE
    raw = read_yaml(path)
    if DEFAULT_LANGUAGE not in raw:
        raise FlowError(f"{path}: must list '{DEFAULT_LANGUAGE}', the default language")
    out = {}
    for code, spec in raw.items():
        if not isinstance(code, str) or not re.fullmatch(r"[a-z]{2,3}", code):
            raise FlowError(f"{path}: {code!r} is not a language code (two or three letters)")
        if not isinstance(spec, dict):
            raise FlowError(f"{path}: {code} must be a mapping of {list(LANGUAGE_FIELDS)}")
        for field in LANGUAGE_FIELDS:
            if not spec.get(field):
                raise FlowError(f"{path}: {code}.{field} is missing")
        unknown = set(spec) - set(LANGUAGE_FIELDS)
        if unknown:
            raise FlowError(f"{path}: {code} has unknown fields {sorted(unknown)}")
        words = spec["minutes"]
        if not (isinstance(words, list) and len(words) == 2 and all(words)):
            raise FlowError(f"{path}: {code}.minutes must be [singular, plural], "
                            f"e.g. [minute, minutes]")
        out[code] = Language(code=code, name=str(spec["name"]), say=str(spec["say"]),
                             voice=str(spec["voice"]), speech=str(spec["speech"]),
                             minute_words=(str(words[0]), str(words[1])))
    return out


def _menu(path: Path, name: str, raw: Any, languages: dict, required: set[str]) -> dict:
    if not isinstance(raw, dict):
        raise FlowError(f"{path}: '{name}' is missing")
    missing = required - raw.keys()
    if missing:
        raise FlowError(f"{path}: {name} lacks choices {sorted(missing)}")
    digits = [str(choice.get("digit", "")) for choice in raw.values()]
    if len(set(digits)) != len(digits) or not all(d.isdigit() and len(d) == 1 for d in digits):
        raise FlowError(f"{path}: {name} digits must be single, distinct keys: {digits}")
    for choice_name, choice in raw.items():
        words = choice.get("words", {})
        for code in languages:
            if not words.get(code):
                raise FlowError(f"{path}: {name}.{choice_name} has no words in '{code}'")
        choice["digit"] = str(choice["digit"])
    return raw


def _prompts(path: Path, raw: Any, languages: dict[str, Language]) -> dict:
    check_texts(path, "prompts", raw, languages, PLACEHOLDERS, PROMPTS)
    for code, table in raw.items():
        days = table["weekdays"]
        if not (isinstance(days, list) and len(days) == 7):
            raise FlowError(f"{path}: prompts.{code}.weekdays must name the 7 days, Monday first")
    return raw


def check_texts(path: Path, name: str, raw: Any, languages: dict[str, Language],
                placeholders: set[str], required: frozenset[str]) -> None:
    """Texts for exactly the offered languages, each with every key the code uses
    (``required``) and the same keys as the default language, and known placeholders only."""
    if not isinstance(raw, dict) or set(raw) != set(languages):
        raise FlowError(f"{path}: {name} must exist for exactly {sorted(languages)} "
                        f"(the languages of {LANGUAGES_FILE})")
    if not all(isinstance(table, dict) for table in raw.values()):
        raise FlowError(f"{path}: {name}.<language> must each map keys to texts")
    keys = set(raw[DEFAULT_LANGUAGE])
    for code, table in raw.items():
        if set(table) != keys:
            raise FlowError(f"{path}: {name}.{code} differs from {name}.{DEFAULT_LANGUAGE} in "
                            f"{sorted(keys ^ set(table))}")
    missing = required - keys  # then no language has them
    if missing:
        raise FlowError(f"{path}: {name}.{DEFAULT_LANGUAGE} lacks {sorted(missing)}, which "
                        f"the hotline sends")
    for code, table in raw.items():
        unit_after = _unit_after(languages[code])
        for key, text in table.items():
            for piece in text if isinstance(text, list) else [text]:
                names = check_text(path, f"{name}.{code}.{key}", piece, placeholders)
                if "minutes" in names and unit_after.search(piece):
                    raise FlowError(f"{path}: {name}.{code}.{key}: {{minutes}} is the whole "
                                    f"duration (\"5 minutes\"), with no unit after it")


def check_text(path: Path, name: str, text: Any, placeholders: set[str]) -> set[str]:
    """One text: not empty, and only known placeholders; returns the placeholders it uses."""
    if not isinstance(text, str) or not text.strip():
        raise FlowError(f"{path}: {name} is empty or not text")
    names = {n for _, n, _, _ in string.Formatter().parse(text) if n}
    if names - placeholders:
        raise FlowError(f"{path}: {name} uses unknown placeholders "
                        f"{sorted(names - placeholders)}")
    return names


def _unit_after(language: Language) -> re.Pattern:
    """A text that writes its own unit after "{minutes}" (it would read "5 minutes minutes")."""
    units = "|".join(re.escape(w) for w in (*language.minute_words, "min"))
    return re.compile(r"\{minutes\}\s*(" + units + ")", re.IGNORECASE)
