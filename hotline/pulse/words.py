"""The pulse survey's words (ivr_flows/pulse.yaml), validated when the app starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from hotline.core.flows import Language, check_texts, load_languages, read_yaml

PULSE_FILE = "pulse.yaml"
EXTENSION = "hotline.pulse_words"
#: Every key the page shows: each must exist in every language.
TEXTS = frozenset({
    "title", "intro", "closed", "burnout_question", "knows_question", "used_question",
    "answer_yes", "answer_no", "likely_question", "role_question", "prefer_not_to_say",
    "submit", "thanks", "limited", "missing", "language",
    *(f"burnout_{v}" for v in range(1, 6)), *(f"likely_{v}" for v in range(1, 6))})


@dataclass(frozen=True)
class PulseWords:
    texts: dict[str, dict[str, str]]

    def table(self, lang: str) -> dict[str, str]:
        """Every text in ``lang`` (English for a language without them)."""
        return self.texts.get(lang) or self.texts["en"]


def load(folder: str | Path, languages: dict[str, Language] | None = None) -> PulseWords:
    """Read and validate ``pulse.yaml`` (languages from ``languages.yaml``)."""
    path = Path(folder) / PULSE_FILE
    languages = languages if languages is not None else load_languages(folder)
    texts = read_yaml(path).get("texts")
    check_texts(path, "texts", texts, languages, set(), TEXTS)
    return PulseWords(texts)


def current() -> PulseWords:
    """The current app's words (loaded when the app starts: hotline/app.py)."""
    return current_app.extensions[EXTENSION]
