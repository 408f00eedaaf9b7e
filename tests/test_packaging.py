"""What each part imports is what the package declares for it (pyproject.toml).

Running (`pip install .`, `make run`) gets the dependencies; the stand-in (HOTLINE_SIMULATOR)
its ``simulator`` extra; nothing the app imports may come only with the test tools.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCAL = {"hotline", "workers", "ivr_flows"}
#: Test and build tools: never a dependency of running.
TOOLS = {"pytest", "playwright", "pip-audit", "ruff", "hypothesis", "py-spy", "pyinstrument"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared(*extras: str) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in PROJECT["optional-dependencies"][extra]}
    return names


def installed_with(names: set[str]) -> set[str]:
    """``names`` and what they install in turn (Flask brings Werkzeug and Click), extras and
    other platforms' requirements aside."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [_name(r) for r in needs if "extra ==" not in r and "sys_platform" not in r]
    return seen


def imported(files) -> set[str]:
    """Top-level modules imported anywhere in ``files`` (function bodies included)."""
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - LOCAL


def distributions(modules: set[str]) -> dict[str, set[str]]:
    owners = packages_distributions()
    return {m: {d.lower().replace("_", "-") for d in owners.get(m, [m])} for m in modules}


def undeclared(files, allowed: set[str]) -> dict[str, set[str]]:
    return {m: d for m, d in distributions(imported(files)).items() if not d & allowed}


def app_files():
    for folder in ("hotline", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            if "simulator" not in path.relative_to(ROOT).parts:
                yield path


def test_every_module_the_app_imports_is_a_dependency():
    assert undeclared(app_files(), installed_with(declared())) == {}


def test_the_stand_in_needs_only_the_dependencies_and_its_extra():
    # lxml was declared only among the test tools: `pip install .` and HOTLINE_SIMULATOR=1
    # failed on its first TwiML document.
    assert undeclared((ROOT / "hotline" / "simulator").rglob("*.py"),
                      installed_with(declared("simulator"))) == {}


def test_running_installs_no_test_tool():
    assert installed_with(declared("simulator", "postgres")) & TOOLS == set()
    assert TOOLS - {"py-spy", "pyinstrument"} <= declared("test")


def test_make_run_installs_the_stand_in_and_not_the_test_tools():
    makefile = (ROOT / "Makefile").read_text()
    run_install = re.search(r"^\$\(RUN_STAMP\):.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "-e '.[simulator]'" in run_install and "test" not in run_install
    assert re.search(r"^run: install$", makefile, re.M)
    assert re.search(r"^install: \$\(RUN_STAMP\)$", makefile, re.M)
