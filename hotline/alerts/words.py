"""The alert texts of ivr_flows/alerts.yaml, validated when the app starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from hotline.core.errors import FlowError
from hotline.core.flows import check_text, read_yaml

ALERTS_FILE = "alerts.yaml"
EXTENSION = "hotline.alert_words"
PREFIXES = ("prefix", "repeat_prefix", "resolved_prefix")
#: Every condition's texts: its alert and its resolution.
PARTS = ("alert", "resolved")
PLACEHOLDERS = {"count", "threshold", "when", "which", "window", "shift"}


@dataclass(frozen=True)
class AlertWords:
    prefixes: dict[str, str]
    messages: dict[str, dict[str, str]]

    def text(self, condition: str, part: str, **values: object) -> str:
        """The bare text (the banner's line), placeholders filled."""
        return self.messages[condition][part].format(**values)

    def full(self, prefix: str, body: str) -> str:
        """A text as sent: ``prefix`` is one of PREFIXES."""
        return self.prefixes[prefix] + body


def load(folder: str | Path, conditions: frozenset[str]) -> AlertWords:
    """Read and validate ``alerts.yaml``: each of ``conditions`` has every part."""
    path = Path(folder) / ALERTS_FILE
    raw = read_yaml(path)
    prefixes = {name: raw.get(name) for name in PREFIXES}
    messages = raw.get("messages")
    if not isinstance(messages, dict) or set(messages) != set(conditions):
        raise FlowError(f"{path}: messages must have exactly {sorted(conditions)}")
    texts = list(prefixes.items())
    for condition, parts in messages.items():
        if not isinstance(parts, dict) or set(parts) != set(PARTS):
            raise FlowError(f"{path}: messages.{condition} must have exactly {list(PARTS)}")
        texts += [(f"messages.{condition}.{part}", text) for part, text in parts.items()]
    for name, text in texts:
        check_text(path, name, text, PLACEHOLDERS)
    return AlertWords(prefixes, messages)


def current() -> AlertWords:
    """The current app's alert words (loaded when the app starts: hotline/app.py)."""
    return current_app.extensions[EXTENSION]
