"""axe-core in the browser tests: every page a person can reach is checked the same way.

axe-core comes from npm (package.json; `make tools` installs it). The pages send a strict
Content-Security-Policy that forbids inline scripts, so the browser contexts that run these
checks are opened with ``bypass_csp=True`` (see ``new_context``) and axe is injected as a
script tag. Only the test browser bypasses the policy; the pages themselves are unchanged.
"""

from __future__ import annotations

from tests.twilio_files import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The impacts that fail a test: a person cannot use the page, or can only with great effort.
FAILING = ("serious", "critical")
# Minor by axe's measure, but a screen reader announces an unnamed column: the walkthrough
# (issue 14) met it on statistics and Available now, so it fails too.
ALSO_FAILING = ("empty-table-header",)

_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + ": " + n.failureSummary),
  }));
}"""


def new_context(browser, **options):
    """A browser context that lets the injected axe script run despite the page's CSP."""
    return browser.new_context(bypass_csp=True, **options)


def violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        raise RuntimeError("axe-core is not installed: run `make tools` (npm install)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    return [v for v in page.evaluate(_RUN) if v["impact"] in FAILING or v["id"] in ALSO_FAILING]


def describe(what: str, found: list[dict]) -> str:
    return f"axe-core on {what}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}, {v['count']} nodes): {v['help']}\n    "
        + "\n    ".join(v["nodes"]) for v in found)


def assert_accessible(page, what: str) -> None:
    """Fail on any serious or critical axe-core violation, naming the rule and the nodes."""
    found = violations(page)
    assert not found, describe(f"{what} ({page.url})", found)


class Audit:
    """Checks several pages and fails once at the end, so one run reports them all."""

    def __init__(self, page) -> None:
        self.page, self.found = page, {}

    def check(self, what: str) -> None:
        found = violations(self.page)
        if found:
            self.found[what] = found

    def assert_clean(self) -> None:
        assert not self.found, "\n".join(describe(what, found)
                                          for what, found in self.found.items())


def watch(page, base: str) -> list[str]:
    """Record, in the list returned, every server error, missing file (but a favicon) and
    request off ``base`` the page makes: a test asserts it stays empty."""
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 500 or (r.status == 404 and "favicon" not in r.url) else None)
    page.on("request", lambda r: errors.append(r.url)
            if not r.url.startswith(base) and not r.url.startswith("data:") else None)
    return errors
