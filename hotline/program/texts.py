"""``ivr_flows/program.yaml``: the words of the public page, poster and wallet card.

Loaded and checked when the app is created (a missing text in one language stops the
start, naming the file and key), like the other flows files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from hotline.core import flows
from hotline.core.errors import FlowError

FILE = "program.yaml"
EXTENSION = "hotline.program"
#: Every text the pages show: each must exist in every language.
TEXTS = frozenset({
    "tagline", "call", "text", "languages", "hours_heading", "hours_always", "hours_shifts",
    "hours_around_the_clock", "hours_no_shifts", "all_day", "weekdays", "how_heading",
    "how_call", "how_ring", "how_callback", "how_text", "who_heading", "who", "who_trained",
    "promise_heading", "never_kept", "redacted", "logs_deleted", "logs_kept", "number_sealed",
    "callback_number", "followups", "events", "statistics", "crisis_heading", "crisis",
    "crisis_call", "crisis_text",
    "print_heading", "print_poster_a4", "print_poster_letter", "print_card_a4",
    "print_card_letter", "poster_headline", "poster_call_or_text", "poster_promise",
    "scan_call", "scan_page", "qr_call", "qr_page", "pulse", "card_fold", "card_front",
    "card_back"})
#: What the app fills in (facts.values); anything else is a typo caught at start.
PLACEHOLDERS = {"program", "number", "crisis", "zone", "minutes", "callback", "talk_key",
                "callback_key", "match_key", "crisis_key", "text_call", "text_chat",
                "text_later", "days", "log_days", "answer_hours", "callback_days", "k",
                "months", "url"}


@dataclass(frozen=True)
class ProgramTexts:
    texts: dict[str, dict[str, Any]]

    def table(self, lang: str) -> dict[str, Any]:
        return self.texts.get(lang) or self.texts[flows.DEFAULT_LANGUAGE]


def load(folder: str | Path, languages: dict[str, flows.Language]) -> ProgramTexts:
    path = Path(folder) / FILE
    raw = flows.read_yaml(path).get("texts")
    flows.check_texts(path, "texts", raw, languages, PLACEHOLDERS, TEXTS)
    unknown = set(raw[flows.DEFAULT_LANGUAGE]) - TEXTS
    if unknown:
        raise FlowError(f"{path}: texts.{flows.DEFAULT_LANGUAGE} has unknown keys "
                        f"{sorted(unknown)}")
    for code, table in raw.items():
        if not (isinstance(table["weekdays"], list) and len(table["weekdays"]) == 7):
            raise FlowError(f"{path}: texts.{code}.weekdays must name the 7 days, Monday first")
    return ProgramTexts(texts=raw)


def current() -> ProgramTexts:
    return current_app.extensions[EXTENSION]
