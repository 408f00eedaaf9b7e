"""The Twilio stand-in is a package of its own: read from the source with ``ast``.

Outside ``web/`` (the part that runs inside the app) it imports nothing of the hotline,
so it could serve any webhook app; its modules import one another in one direction only
(type-checking imports included); and an import inside a function body says why on its
line. ``core.Sim``, ``phones.Network`` and ``twiml_base.Runner``, the protocols that let the
parts name the whole without importing it, are checked against what they stand for.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline import simulator
from hotline.simulator.core import Sim
from hotline.simulator.engine import TwilioSim
from hotline.simulator.phones import Network
from hotline.simulator.twiml import Interpreter
from hotline.simulator.twiml_base import Runner

PACKAGE = Path(simulator.__file__).parent
NAME = simulator.__name__
WEB = f"{NAME}.web"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def in_functions(tree: ast.Module) -> set[ast.AST]:
    """The import statements inside function bodies."""
    return {node for func in ast.walk(tree)
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for node in ast.walk(func) if isinstance(node, (ast.Import, ast.ImportFrom))}


def imports(module: str, known: frozenset[str] = frozenset(SOURCES)
            ) -> Iterator[tuple[str, int, bool]]:
    """``(imported module, line, explained)`` for every import in ``module``'s source.

    ``from a.b import c`` is an import of ``a.b`` and, when it is a module, of ``a.b.c``
    too (``a.b``'s ``__init__`` runs first and ``c`` may be any of its names): so a
    submodule written ``from hotline.simulator import spec`` ties itself to the package's
    ``__init__``, where ``from hotline.simulator.spec import validate`` does not.
    ``explained`` is True for an import in a function body whose line carries a comment
    (the only kind the cycle check leaves out).
    """
    path = SOURCES[module]
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    deferred = in_functions(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names
                                if f"{base}.{alias.name}" in known]
        else:
            continue
        explained = node in deferred and "#" in lines[node.lineno - 1]
        for target in dict.fromkeys(targets):
            yield target, node.lineno, explained


def test_outside_web_the_stand_in_imports_nothing_of_the_app():
    found = [f"{module}:{line} imports {target}"
             for module in SOURCES if not module.startswith(WEB)
             for target, line, _ in imports(module)
             if (target == "hotline" or target.startswith("hotline."))
             and not (target == NAME or target.startswith(f"{NAME}."))]
    assert found == []


def test_loading_the_stand_in_loads_nothing_of_the_app():
    """The same, at run time: a fresh interpreter imports every module outside ``web/``."""
    core = [module for module in SOURCES if not module.startswith(WEB)]
    probe = ("import importlib, sys\n"
             f"for name in {core!r}:\n"
             "    importlib.import_module(name)\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'hotline'))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=PACKAGE.parent.parent, check=True)
    loaded = set(ast.literal_eval(done.stdout))
    assert loaded - set(core) == {"hotline"}  # the package itself: hotline/__init__ is light


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    return {module: {target for target, _, explained in imports(module)
                     if target in SOURCES and not explained}
            for module in SOURCES}


def test_the_modules_import_one_another_in_one_direction():
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    graph = import_graph()
    graph[f"{NAME}.state"].add(f"{NAME}.engine")  # state is at the bottom: this closes loops
    [component] = cycles(graph)
    assert {f"{NAME}.state", f"{NAME}.engine", f"{NAME}.clock"} <= set(component)


def test_an_import_in_a_function_body_says_why():
    unexplained = []
    for module, path in SOURCES.items():
        lines = path.read_text().splitlines()
        unexplained += [f"{module}:{node.lineno}"
                        for node in in_functions(ast.parse(path.read_text()))
                        if "#" not in lines[node.lineno - 1]]
    assert unexplained == []


def members(protocol: type) -> set[str]:
    """The attributes and methods a protocol declares."""
    methods = {name for name, value in vars(protocol).items()
               if inspect.isfunction(value) and not name.startswith("__")}
    return set(protocol.__annotations__) | methods


@pytest.mark.parametrize(("protocol", "implementation"), [(Sim, TwilioSim),
                                                          (Network, TwilioSim),
                                                          (Runner, Interpreter)])
def test_the_protocols_describe_what_they_stand_for(protocol, implementation):
    made = TwilioSim(None, account_sid="AC", auth_token="x", voice_url="http://app/voice")
    instance = made if implementation is TwilioSim else made.interpreter
    missing = sorted(name for name in members(protocol) if not hasattr(instance, name))
    assert missing == []
    for name in members(protocol) - set(protocol.__annotations__):
        declared = inspect.signature(vars(protocol)[name])
        actual = inspect.signature(getattr(implementation, name))
        assert list(declared.parameters.values())[1:] == \
            list(actual.parameters.values())[1:], name


def class_members(node: ast.ClassDef) -> set[str]:
    """What a class defines itself: its methods and its class-level names."""
    names = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
    names |= {item.target.id for item in node.body
              if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}
    names |= {target.id for item in node.body if isinstance(item, ast.Assign)
              for target in item.targets if isinstance(target, ast.Name)}
    return names


def strays(module: str, protocol: str, source: str | None = None) -> list[str]:
    """Attributes reached through something typed ``protocol`` that it does not list.

    Something typed ``protocol``: a parameter annotated with it (``self: Sim`` in the parts
    of ``TwilioSim``, ``sim: Sim``), or ``self.sim`` in a module that names ``Sim``. A
    part's ``self`` may also reach what its own class defines.
    """
    tree = ast.parse(SOURCES[module].read_text() if source is None else source)
    names_sim = any(isinstance(node, ast.ImportFrom) and node.module == f"{NAME}.core"
                    and any(alias.name == "Sim" for alias in node.names)
                    for node in tree.body)
    allowed = members({"Sim": Sim, "Runner": Runner}[protocol])
    found = []
    scopes = [(node, class_members(node)) for node in tree.body
              if isinstance(node, ast.ClassDef)]
    scopes += [(node, set()) for node in tree.body if isinstance(node, ast.FunctionDef)]
    for scope, own in scopes:
        for func in ast.walk(scope):
            if not isinstance(func, ast.FunctionDef):
                continue
            typed = {arg.arg for arg in func.args.args + func.args.kwonlyargs
                     if arg.annotation is not None and ast.unparse(arg.annotation) == protocol}
            for node in ast.walk(func):
                if not isinstance(node, ast.Attribute):
                    continue
                base = ast.unparse(node.value)
                if base in typed:
                    extra = own if base == "self" else set()
                elif protocol == "Sim" and names_sim and base == "self.sim":
                    extra = set()
                else:
                    continue
                if node.attr not in allowed | extra:
                    found.append(f"{module}:{node.lineno} {base}.{node.attr}")
    return found


@pytest.mark.parametrize("protocol", ["Sim", "Runner"])
def test_the_parts_use_only_what_the_protocols_list(protocol):
    assert [stray for module in SOURCES for stray in strays(module, protocol)] == []


def test_the_protocol_check_sees_a_stray():
    source = (f"from {NAME}.core import Sim\n"
              "class Part:\n"
              "    def own(self): ...\n"
              "    def act(self: Sim):\n"
              "        self.own(); self.schedule(0, print); self.leg_of('CA1')\n"
              "class Panel:\n"
              "    def show(self):\n"
              "        return self.sim.legs, self.sim.runner\n"
              "def take(sim: Sim):\n"
              "    return sim.now, sim.own\n")
    assert strays("m", "Sim", source) == [
        "m:5 self.leg_of", "m:8 self.sim.runner", "m:10 sim.own"]
