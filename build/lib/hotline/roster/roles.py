"""Supporters' roles and the program's units: ``ivr_flows/roster.yaml``, read and
validated at start-up (an error names the file and the key), then read-only.

Both lists serve two sides: the roster (a supporter has one role and one or more units,
``hotline.roster.supporters`` checks them against these lists) and the caller who asks for
a match (a key press, words heard or a word written choose an entry:
``hotline.escalation.matching`` routes on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from hotline.core.errors import FlowError
from hotline.core.flows import Language, read_yaml

ROSTER_FILE = "roster.yaml"
EXTENSION = "hotline.roster"
KINDS = ("roles", "units")
#: One key per entry, 1 to 9.
MAX_ENTRIES = 9
NAME = re.compile(r"[a-z][a-z_]{0,31}")


@dataclass(frozen=True)
class Entry:
    """One role or unit: its stored name and its words by language (the first is spoken)."""
    name: str
    digit: str
    words: dict[str, tuple[str, ...]]

    def label(self, lang: str) -> str:
        return (self.words.get(lang) or next(iter(self.words.values())))[0]


@dataclass(frozen=True)
class RosterLists:
    roles: tuple[Entry, ...]
    units: tuple[Entry, ...]

    def entries(self, kind: str) -> tuple[Entry, ...]:
        return self.roles if kind == "roles" else self.units

    def names(self, kind: str) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries(kind))

    def entry(self, kind: str, name: str | None) -> Entry | None:
        return next((e for e in self.entries(kind) if e.name == name), None)

    def choose(self, kind: str, digits: str = "", words: str = "") -> str | None:
        """The entry a key press names, else the one whose word (any language, whole
        words, the longest found: "nurse practitioner" over "nurse") is in ``words``."""
        digits = (digits or "").strip()
        for entry in self.entries(kind):
            if digits and digits == entry.digit:
                return entry.name
        text = " ".join((words or "").lower().split())
        best: tuple[int, str] | None = None
        for entry in self.entries(kind):
            for word_list in entry.words.values():
                for word in word_list:
                    if re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", text) and (
                            best is None or len(word) > best[0]):
                        best = (len(word), entry.name)
        return best[1] if best else None

    def hints(self, kind: str, lang: str) -> str:
        """Speech hints for a ``<Gather>`` asking for one of ``kind``."""
        return ", ".join(w for e in self.entries(kind) for w in e.words.get(lang, ()))


def load(folder: str | Path, languages: dict[str, Language]) -> RosterLists:
    """Read and validate ``roster.yaml`` in ``folder``; FlowError names the key."""
    path = Path(folder) / ROSTER_FILE
    return parse(read_yaml(path), languages, ROSTER_FILE)


def parse(data: dict, languages: dict[str, Language], name: str = ROSTER_FILE) -> RosterLists:
    unknown = set(data) - set(KINDS)
    if unknown:
        raise FlowError(f"{name}: {min(unknown)} is not a known key (expected: roles, units)")
    return RosterLists(*(_entries(name, kind, data.get(kind), languages) for kind in KINDS))


def _entries(file: str, kind: str, raw: Any, languages: dict[str, Language]) -> tuple:
    if not isinstance(raw, dict) or not raw:
        raise FlowError(f"{file}: {kind} must map each name to its words by language")
    if len(raw) > MAX_ENTRIES:
        raise FlowError(f"{file}: {kind} has {len(raw)} entries; at most {MAX_ENTRIES} "
                        f"(one key each)")
    out = []
    for index, (key, spec) in enumerate(raw.items(), start=1):
        where = f"{kind}.{key}"
        if not isinstance(key, str) or not NAME.fullmatch(key):
            raise FlowError(f"{file}: {where} is not a name (lower case letters and "
                            f"underscores, at most 32)")
        if not isinstance(spec, dict):
            raise FlowError(f"{file}: {where} must map languages to words")
        extra = set(spec) - set(languages)
        if extra:
            raise FlowError(f"{file}: {where}.{min(extra)} is not a language of "
                            f"languages.yaml")
        words = {}
        for code in languages:
            found = spec.get(code)
            if not isinstance(found, list) or not found or not all(
                    isinstance(w, str) and w.strip() for w in found):
                raise FlowError(f"{file}: {where}.{code} must be a list of words")
            words[code] = tuple(w.strip() for w in found)
        out.append(Entry(key, str(index), words))
    return tuple(out)


def current() -> RosterLists:
    """The roles and units of the current app."""
    return current_app.extensions[EXTENSION]
