"""``make bench``: every benchmark of the hotline in one run, one table, one RESULTS.md entry.

Runs each part as its own process (each starts and stops the servers it needs), in order:

- ``webhooks``: signed call-flow and text sequences against the app under gunicorn, next to
  a bare Flask app returning constant TwiML under the same gunicorn settings (the ceiling);
- ``surge``: 500 callers within 60 s and 50 supporters, through the offline stand-in;
- ``followups``: 100,000 scheduled follow-ups, then delivery lateness with RQ's scheduler;
- ``stats``: every dashboard query on 1,000,000 events, on SQLite and on PostgreSQL;
- ``service_level``: time to a human on a simulated day, per escalation policy, against an
  oracle router (in virtual time, in process); its tables go into RESULTS.md as they are.

Prints one table (figure, value, target, PASS/FAIL) and rewrites the "make bench" block at
the top of ``benchmarks/RESULTS.md`` with it, the date and the machine's CPU count. A part
that crashes or overruns its budget is shown as such; the run goes on with the next part.
``BENCH_ONLY=webhooks,stats`` runs a subset. Exits 1 if a part crashed, 0 otherwise (a
missed target is a FAIL in the table, not a crash).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
START, END = "<!-- make bench: start -->", "<!-- make bench: end -->"

#: (part, wall-time budget in seconds): a part past its budget is stopped and shown as such.
PARTS = (("webhooks", 200), ("surge", 170), ("followups", 150), ("stats", 150),
         ("service_level", 150))


def run_part(name: str, budget: int, folder: Path) -> dict:
    out = folder / f"{name}.json"
    started = time.monotonic()
    print(f"==> {name} (budget {budget} s)", flush=True)
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"),
                             "--json", str(out)], cwd=ROOT, start_new_session=True)
    try:
        failed = None if proc.wait(timeout=budget) == 0 else f"exited {proc.returncode}"
    except subprocess.TimeoutExpired:  # TERM lets the part stop its servers; then KILL
        failed = f"over its {budget} s budget"
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - started
    if failed is None and out.exists():
        result = json.loads(out.read_text())
    else:
        result = {"name": name, "title": name, "rows": [], "notes": []}
        failed = failed or "wrote no results"
    result.update(seconds=round(seconds), crashed=failed)
    return result


def verdict(row: dict) -> str:
    return {True: "PASS", False: "FAIL"}.get(row.get("pass"), "")


def table(results: list[dict]) -> list[str]:
    lines = ["| part | figure | value | target | result |", "|---|---|---|---|---|"]
    for result in results:
        if result["crashed"]:
            lines.append(f"| {result['name']} | (the part) | {result['crashed']} | | CRASH |")
        for row in result["rows"]:
            cells = (result["name"], row["figure"], row["value"], row.get("target") or "",
                     verdict(row))
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return lines


def block(results: list[dict], total: float) -> str:
    now = datetime.now().strftime("%Y-%m-%d %H:%M")
    cpu = platform.processor() or platform.machine()
    lines = [START, f"## make bench {now}: nproc {os.cpu_count()}, {cpu}, "
             f"Python {platform.python_version()}, {round(total)} s in all", ""]
    lines += table(results) + [""]
    for result in results:
        lines.append(f"**{result['name']}** ({result['seconds']} s): {result.get('title', '')}")
        lines += [f"- {note}" for note in result.get("notes", [])]
        lines.append("")
        if result.get("tables"):  # Markdown tables of the part's own, kept as they are
            lines += [*result["tables"], ""]
    lines.append(END)
    return "\n".join(lines)


def write_results(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START in old and END in old:
        new = old[:old.index(START)] + text + old[old.index(END) + len(END):]
    else:
        head, _, rest = old.partition("\n")
        new = f"{head}\n\n{text}\n{rest}"
    RESULTS.write_text(new)


def main() -> int:
    only = {p for p in os.environ.get("BENCH_ONLY", "").split(",") if p}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        results = [run_part(name, budget, Path(tmp)) for name, budget in PARTS
                   if not only or name in only]
    text = block(results, time.monotonic() - started)
    print("\n" + "\n".join(table(results)))
    for result in results:
        if result.get("tables"):
            print("\n" + "\n".join(result["tables"]))
    write_results(text)
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 1 if any(r["crashed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
