"""The IVR flows in ``ivr_flows/``: loaded once, validated, then read-only.

A missing prompt in one language, a duplicated digit or an unknown placeholder fails
the app at start with a message naming the file and key, never mid-call.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hotline.errors import FlowError

VOICE_FILE = "voice.yaml"
#: Placeholders a prompt may use; anything else is a typo caught at start.
PLACEHOLDERS = {"minutes", "crisis", "when"}
#: "{minutes}" is filled with a whole duration ("1 minute", "5 minutos"), never a bare
#: number, so the grammar is right for 1: the unit's singular and plural per language.
MINUTE_WORDS = {"en": ("minute", "minutes"), "es": ("minuto", "minutos")}
#: A text that writes its own unit after "{minutes}" (it would read "5 minutes minutes").
_UNIT_AFTER = re.compile(r"\{minutes\}\s*(min|minute|minuto)", re.IGNORECASE)
#: Menus the voice path needs, with the choices each must offer.
REQUIRED_MENUS = {"menu": {"talk", "callback", "language", "crisis"},
                  "options": {"keep_waiting", "callback", "crisis"}}


@dataclass(frozen=True)
class Language:
    code: str
    say: str       # BCP-47 code for <Say language>
    voice: str     # <Say voice>
    speech: str    # <Gather language> for speech recognition
    name: str


@dataclass(frozen=True)
class Flows:
    """Menus, prompts and languages of the voice path."""

    languages: dict[str, Language]
    menus: dict[str, dict[str, dict[str, Any]]]
    prompts: dict[str, dict[str, Any]]

    default_language: str = "en"

    def language(self, code: str | None) -> Language:
        """The language ``code``, or the default one when unknown."""
        return self.languages.get(code or "", self.languages[self.default_language])

    def prompt(self, lang: str, key: str, **values: Any) -> str:
        """One prompt in ``lang`` with its placeholders filled."""
        code = self.language(lang).code
        text = self.prompts[code][key]
        if "minutes" in values:
            values["minutes"] = duration(code, values["minutes"])
        return text.format(**values) if values else text

    def wait_message(self, lang: str, turn: int) -> str:
        """The reassurance for the ``turn``-th wait loop (they rotate)."""
        messages = self.prompts[self.language(lang).code]["wait"]
        return messages[turn % len(messages)]

    def choose(self, menu: str, lang: str, digits: str = "", speech: str = "") -> str | None:
        """The choice named by a key press or by words heard, or None."""
        digits, heard = (digits or "").strip(), (speech or "").strip().lower()
        code = self.language(lang).code
        for name, choice in self.menus[menu].items():
            if digits and digits == choice["digit"]:
                return name
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


def duration(lang: str, minutes: int) -> str:
    """``minutes`` as words in ``lang`` (English when unknown): "1 minute", "5 minutos"."""
    one, many = MINUTE_WORDS.get(lang, MINUTE_WORDS["en"])
    return f"{minutes} {one if minutes == 1 else many}"


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


def load(folder: str | Path) -> Flows:
    """Read and validate ``voice.yaml`` in ``folder``."""
    path = Path(folder) / VOICE_FILE
    data = read_yaml(path)
    languages = _languages(path, data.get("languages"))
    menus = {name: _menu(path, name, data.get(name), languages, required)
             for name, required in REQUIRED_MENUS.items()}
    prompts = _prompts(path, data.get("prompts"), languages)
    return Flows(languages=languages, menus=menus, prompts=prompts)


def _languages(path: Path, raw: Any) -> dict[str, Language]:
    if not isinstance(raw, dict) or "en" not in raw:
        raise FlowError(f"{path}: 'languages' must list at least 'en'")
    out = {}
    for code, spec in raw.items():
        try:
            out[code] = Language(code=code, **spec)
        except TypeError as exc:
            raise FlowError(f"{path}: languages.{code}: {exc}") from None
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


def _prompts(path: Path, raw: Any, languages: dict) -> dict:
    check_texts(path, "prompts", raw, list(languages), PLACEHOLDERS)
    return raw


def check_texts(path: Path, name: str, raw: Any, languages: list[str],
                placeholders: set[str]) -> None:
    """Every language has the same keys as English, and only known placeholders."""
    if not isinstance(raw, dict) or set(raw) != set(languages):
        raise FlowError(f"{path}: {name} must exist for exactly {sorted(languages)}")
    keys = set(raw["en"])
    for code, table in raw.items():
        if set(table) != keys:
            raise FlowError(f"{path}: {name}.{code} differs from {name}.en in "
                            f"{sorted(keys ^ set(table))}")
        for key, text in table.items():
            for piece in text if isinstance(text, list) else [text]:
                names = {n for _, n, _, _ in string.Formatter().parse(piece) if n}
                if names - placeholders:
                    raise FlowError(f"{path}: {name}.{code}.{key} uses unknown "
                                    f"placeholders {sorted(names - placeholders)}")
                if "minutes" in names and (code not in MINUTE_WORDS or _UNIT_AFTER.search(piece)):
                    raise FlowError(f"{path}: {name}.{code}.{key}: {{minutes}} is the whole "
                                    f"duration (\"5 minutes\"), with no unit after it, in a "
                                    f"language of hotline.flows.MINUTE_WORDS")
