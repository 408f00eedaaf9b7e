"""The debrief texts of ivr_flows/debriefs.yaml, validated when the app starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from hotline.core.flows import Language, check_texts, load_languages, read_yaml

DEBRIEFS_FILE = "debriefs.yaml"
#: Every text the code sends: each must exist in every language.
MESSAGES = frozenset({"invitation", "reminder_day_before", "reminder_soon"})
PLACEHOLDERS = {"when", "minutes", "number", "code"}
EXTENSION = "hotline.debrief_texts"


@dataclass(frozen=True)
class DebriefTexts:
    messages: dict[str, dict[str, str]]

    def text(self, lang: str, key: str, **values: str) -> str:
        return (self.messages.get(lang) or self.messages["en"])[key].format(**values)


def load(folder: str | Path, languages: dict[str, Language] | None = None) -> DebriefTexts:
    """Read and validate ``debriefs.yaml`` (languages from ``languages.yaml``)."""
    path = Path(folder) / DEBRIEFS_FILE
    languages = languages if languages is not None else load_languages(folder)
    messages = read_yaml(path).get("messages")
    check_texts(path, "messages", messages, languages, PLACEHOLDERS, MESSAGES)
    return DebriefTexts(messages)


def current() -> DebriefTexts:
    """The current app's texts (loaded when the app starts: hotline/app.py)."""
    return current_app.extensions[EXTENSION]
