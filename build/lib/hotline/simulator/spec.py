"""Checks REST requests' parameters against Twilio's OpenAPI spec (when the spec is present).

The spec (``twilio_api_v2010.json``) is never copied into the repository. Twilio publishes it
in the npm package ``@twilio/cli-core``, which ``make tools`` installs into node_modules; it is
read from ``$TWILIO_OPENAPI_SPEC``, else from there, else from ``../shared/twilio/`` beside the
repository, once per process. Without any of them (``make run`` installs no Node packages)
``validate`` finds no problems and one info line says so.

A form body maps onto the operation's ``application/x-www-form-urlencoded`` schema: each
key is a property, and a repeated key (``StatusCallbackEvent=a&StatusCallbackEvent=b``) is
how an ``array`` property's items are sent, so only array properties may repeat.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.datastructures import MultiDict

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_NAME = "twilio_api_v2010.json"
NPM_SPEC = REPO_ROOT / "node_modules" / "@twilio" / "cli-core" / "src" / "services" / \
    "twilio-api" / SPEC_NAME
SHARED_SPEC = REPO_ROOT.parent / "shared" / "twilio" / SPEC_NAME
FORM = "application/x-www-form-urlencoded"
INTEGER = re.compile(r"^[+-]?\d+$")
BOOLEANS = frozenset({"true", "false"})
METHODS = frozenset({"get", "post", "put", "delete", "patch"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: ``kind`` is missing, unknown, repeated or invalid."""
    param: str
    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Operation:
    """A spec operation: its path-parameter schemas and its (resolved) form schema."""
    path_params: dict[str, dict[str, Any]]
    form: dict[str, Any]


def spec_path() -> Path:
    """Where the spec is: ``$TWILIO_OPENAPI_SPEC``, else the npm package's copy, else
    ``../shared/twilio`` (the first that exists, or the npm path when none does)."""
    if os.environ.get("TWILIO_OPENAPI_SPEC"):
        return Path(os.environ["TWILIO_OPENAPI_SPEC"])
    return next((p for p in (NPM_SPEC, SHARED_SPEC) if p.is_file()), NPM_SPEC)


Index = dict[int, list[tuple[re.Pattern[str], dict[str, Operation]]]]


@lru_cache(maxsize=4)
def load_index(path: Path) -> Index | None:
    """Operations by path segment count, literal paths before templated ones; None if absent."""
    if not path.is_file():
        log.info("Twilio's OpenAPI spec not found at %s: REST parameters are not checked", path)
        return None
    spec = json.loads(path.read_text(encoding="utf-8"))
    index: Index = {}
    for template in sorted(spec["paths"], key=lambda t: t.count("{")):
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        ops = {method.upper(): _operation(spec, op)
               for method, op in spec["paths"][template].items() if method in METHODS}
        index.setdefault(template.count("/"), []).append((re.compile(f"^{regex}$"), ops))
    return index


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation serving ``method path`` and the path's parameters (None if unknown)."""
    for regex, ops in (load_index(spec_path()) or {}).get(path.count("/"), ()):
        match = regex.match(path)
        if match:
            op = ops.get(method.upper())
            return (op, match.groupdict()) if op else None
    return None


def _operation(spec: dict[str, Any], op: dict[str, Any]) -> Operation:
    """Resolve ``op``'s path parameters and form schema (``$ref``s followed)."""
    params = [_resolve(spec, p) for p in op.get("parameters", ())]
    path_params = {p["name"]: _resolve(spec, p.get("schema", {}))
                   for p in params if p.get("in") == "path"}
    body = _resolve(spec, op.get("requestBody", {}))
    form = _resolve(spec, body.get("content", {}).get(FORM, {}).get("schema", {}))
    properties = {name: _property(spec, prop) for name, prop in form.get("properties", {}).items()}
    return Operation(path_params, {**form, "properties": properties})


def _property(spec: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """A form property with its ``$ref`` (and its array ``items``' ``$ref``) resolved."""
    prop = _resolve(spec, prop)
    return {**prop, "items": _resolve(spec, prop["items"])} if "items" in prop else prop


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/components/...``) until a real node."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validate(method: str, path: str, form: MultiDict) -> list[Problem]:
    """Everything wrong with ``form`` (and the path) for ``method path``, per the spec."""
    found = find_operation(method, path)
    if found is None:
        return []
    op, path_values = found
    problems = [p for name, value in path_values.items()
                for p in _check_value(name, value, op.path_params.get(name, {}), "path ")]
    return problems + _check_form(op.form, form)


def _check_form(schema: dict[str, Any], form: MultiDict) -> list[Problem]:
    """Required, known, not repeated (unless an array), and each value valid."""
    properties = schema.get("properties", {})
    problems = [Problem(name, "missing", f"Required parameter '{name}' is missing.")
                for name in schema.get("required", ())
                if not any(v.strip() for v in form.getlist(name))]
    for name, values in form.lists():
        if name not in properties:
            problems.append(Problem(name, "unknown", f"Unknown parameter '{name}'."))
        else:
            problems += _check_values(name, values, properties[name])
    return problems


def _check_values(name: str, values: list[str], prop: dict[str, Any]) -> list[Problem]:
    """Check a property's values: array items each, or the one value of a scalar."""
    if prop.get("type") == "array":
        item = prop.get("items", {})
        return [p for v in values if v for p in _check_value(name, v, item)]
    if len(values) > 1:
        return [Problem(name, "repeated", f"Parameter '{name}' may only be given once.")]
    return _check_value(name, values[0], prop) if values[0] else []


def _check_value(name: str, value: str, schema: dict[str, Any],
                 where: str = "") -> list[Problem]:
    """Enum, type, format, pattern and length of one (non-empty) string value."""
    reason = _reason(value, schema)
    if reason is None:
        return []
    shown = value if len(value) <= 60 else value[:57] + "..."
    return [Problem(name, "invalid",
                    f"Invalid value {shown!r} for {where}parameter '{name}': {reason}.")]


def _reason(value: str, schema: dict[str, Any]) -> str | None:
    """Why ``value`` does not fit ``schema`` (None if it does)."""
    kind, enum = schema.get("type"), schema.get("enum")
    if enum and value not in enum:
        return "must be one of " + ", ".join(map(str, enum))
    if kind == "integer" and not INTEGER.match(value):
        return "must be an integer"
    if kind == "number" and not _is_number(value):
        return "must be a number"
    if kind == "boolean" and value.lower() not in BOOLEANS:
        return "must be true or false"
    if schema.get("format") == "uri" and not _ignores_format(schema) and not _is_url(value):
        return "must be an absolute http(s) URL"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"must match {schema['pattern']}"
    if len(value) < schema.get("minLength", 0):
        return f"must be at least {schema['minLength']} characters long"
    if len(value) > schema.get("maxLength", len(value)):
        return f"must be at most {schema['maxLength']} characters long"
    return None


def _is_number(value: str) -> bool:
    try:
        return float(value) - float(value) == 0          # finite (rejects nan and inf)
    except ValueError:
        return False


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:                                    # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _ignores_format(schema: dict[str, Any]) -> bool:
    """Twilio marks some formats as advisory (``x-twilio: {ignoreFormat: true}``)."""
    return bool(schema.get("x-twilio", {}).get("ignoreFormat"))
