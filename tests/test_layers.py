"""The house rules of docs/architecture.md, read from the code's own imports.

Packages here are the children of ``hotline`` (``hotline.voice``, ``hotline.settings``...),
plus ``workers`` and ``ivr_flows``. Imports under ``if TYPE_CHECKING:`` are for type
checkers only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("hotline", "workers", "ivr_flows")


def _modules() -> dict[str, Path]:
    found = {}
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST):
    """(import node, inside a function?) for every import outside TYPE_CHECKING blocks."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            yield from walk(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    yield from walk(tree, False)


def _targets(node, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if not MODULES[module].name == "__init__.py":
            package = package[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in TOP:
        return None
    if parts[0] != "hotline":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 1 else None  # the root: the entry point


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        source = package(module)
        for node, _ in _imports(ast.parse(path.read_text())):
            for target in _targets(node, module):
                dest = package(target) if target in MODULES else None
                if source and dest and dest != source:
                    graph.setdefault(source, set()).add(dest)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_packages():
    assert cycles(edges()) == []


def test_nothing_in_hotline_imports_a_job_module():
    """Jobs are enqueued by name (``hotline.lifecycle.effects``): the app never imports
    workers/, so a job module is only ever an adapter over hotline/."""
    offenders = [f"{module} imports {target}"
                 for module, path in MODULES.items() if module.startswith("hotline")
                 for node, _ in _imports(ast.parse(path.read_text()))
                 for target in _targets(node, module)[:1] if target.split(".")[0] == "workers"]
    assert offenders == []


def test_an_import_inside_a_function_says_why():
    """An import in a function body hides an arrow from the reader (and from the check
    above): each one carries a comment, on its line or the line above, saying why."""
    bare = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for node, in_function in _imports(ast.parse("\n".join(lines))):
            if not in_function:
                continue
            here, above = lines[node.lineno - 1], lines[node.lineno - 2]
            if "#" not in here and not above.strip().startswith("#"):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []


def test_the_checks_see_a_cycle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
