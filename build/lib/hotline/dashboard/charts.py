"""Charts drawn on the server as SVG: nothing is fetched from anywhere else.

Only presentation attributes and classes from the app's own stylesheet (the CSP allows no
inline style). A hidden cell is drawn as a hatched stub labelled ``<k`` (fewer than k,
possibly none: zeros too) or ``hidden``, never as a height that would give its value
away. Every chart sits next to its table.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from hotline.disclosure.report import Report, Table

WIDTH = 760
BAR_HEIGHT = 22
COLUMN_AREA = 180
#: Heatmap colour steps, light to dark (a sequential blue scale, readable when printed).
STEPS = ("#eef4fb", "#cfe0f3", "#9fc3e6", "#6aa1d6", "#3a7dc0", "#1d5a99", "#0d3b6e")


def wait_text(seconds: int | None) -> str | None:
    """A time to a human as the page shows it: "45 s", "1 min 05 s" (None stays None: the
    card shows it withheld). The CSV and JSON keep the exact seconds."""
    if seconds is None:
        return None
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def render(report: Report, table: Table) -> Markup:
    """The chart of a table, or an empty string for tables shown only as tables."""
    draw = {"bars": _bars, "columns": _columns, "heatmap": _heatmap}.get(table.chart)
    return draw(report, table) if draw else Markup("")


def _svg(table: Table, width: int, height: int, body: list[str]) -> Markup:
    pid = f"hatch-{table.id}"
    defs = (f'<defs><pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f1f1f1"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="#9a9a9a" stroke-width="2"/></pattern>'
            f'</defs>')
    label = escape(f"{table.title}: chart; the numbers are in the table below")
    # Drawn at its own size, never scaled down: a chart squeezed into a phone's width drew
    # its text at about 6 px. On a narrow screen it scrolls sideways in its own box.
    return Markup(f'<div class="scroll-x chart-box" role="group" aria-label="{label}" '
                  f'tabindex="0"><svg class="chart" role="img" aria-label="{label}" '
                  f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'xmlns="http://www.w3.org/2000/svg">{defs}' + "".join(body) + "</svg></div>")


def _values(report: Report, table: Table) -> list[tuple[str, int | str]]:
    return [(label, report.shown(keys[0])) for label, keys in table.rows]


def _bars(report: Report, table: Table) -> Markup:
    """Horizontal bars: one per category, value at the end."""
    rows = _values(report, table)
    top = max([v for _, v in rows if isinstance(v, int)] + [1])
    label_w, bar_w = 300, WIDTH - 300 - 70
    body = []
    for i, (label, value) in enumerate(rows):
        y = i * (BAR_HEIGHT + 8) + 4
        body.append(f'<text class="label" x="{label_w - 8}" y="{y + 15}" '
                    f'text-anchor="end">{escape(label)}</text>')
        if isinstance(value, int):
            w = round(bar_w * value / top) if value else 0
            body.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{w}" '
                        f'height="{BAR_HEIGHT}"><title>{escape(label)}: {value}</title></rect>')
            body.append(f'<text class="value" x="{label_w + w + 6}" y="{y + 15}">{value}</text>')
        else:
            body.append(_stub(table, label_w, y, 36, BAR_HEIGHT, label, value))
            body.append(f'<text class="value suppressed" x="{label_w + 42}" y="{y + 15}">'
                        f'{escape(value)}</text>')
    return _svg(table, WIDTH, len(rows) * (BAR_HEIGHT + 8) + 8, body)


def _stub(table: Table, x: int, y: int, w: int, h: int, label: str, value: str) -> str:
    return (f'<rect class="hidden-cell" x="{x}" y="{y}" width="{w}" height="{h}" '
            f'fill="url(#hatch-{table.id})"><title>{escape(label)}: {escape(value)}</title>'
            f'</rect>')


def _columns(report: Report, table: Table) -> Markup:
    """Vertical columns over time, with a value axis and sparse time labels."""
    rows = _values(report, table)
    top = _nice(max([v for _, v in rows if isinstance(v, int)] + [1]))
    left, bottom = 44, COLUMN_AREA + 10
    step = (WIDTH - left - 10) / max(len(rows), 1)
    body = [_axis(left, bottom, top)]
    every = max(1, -(-len(rows) // 9))
    for i, (label, value) in enumerate(rows):
        x = left + i * step + step * 0.12
        w = max(step * 0.76, 1)
        if isinstance(value, int):
            h = COLUMN_AREA * value / top
            body.append(f'<rect class="bar" x="{x:.1f}" y="{bottom - h:.1f}" width="{w:.1f}" '
                        f'height="{h:.1f}"><title>{escape(label)}: {value}</title></rect>')
        else:
            body.append(_stub(table, round(x), bottom - 14, round(w), 14, label, value))
        if i % every == 0:
            body.append(f'<text class="tick" x="{x + w / 2:.1f}" y="{bottom + 16}" '
                        f'text-anchor="middle">{escape(_short(label))}</text>')
    return _svg(table, WIDTH, bottom + 24, body)


def _short(label: str) -> str:
    """'Mon 26 Oct' -> '26 Oct'; 'week of 26 Oct' -> '26 Oct'."""
    label = label.replace("week of ", "")
    return label[4:] if label[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun") else label


def _nice(top: int) -> int:
    """A round axis maximum at or above ``top``."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if top <= step * 4:
            return step * 4
    return top


def _axis(left: int, bottom: int, top: int) -> str:
    parts = [f'<line class="axis" x1="{left}" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}"/>']
    for i in range(5):
        value = top * i // 4
        y = bottom - COLUMN_AREA * value / top
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{WIDTH - 10}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{value}</text>')
    return "".join(parts)


def _heatmap(report: Report, table: Table) -> Markup:
    """Days down, hours across; darker is busier; hatched cells are hidden."""
    left, top_pad, cell = 92, 22, 27
    shown = [(label, [report.shown(k) for k in keys]) for label, keys in table.rows]
    top = max([v for _, vs in shown for v in vs if isinstance(v, int)] + [1])
    body = [f'<text class="tick" x="{left + h * cell + cell / 2}" y="14" text-anchor="middle">'
            f'{h:02d}</text>' for h in range(0, 24, 3)]
    for r, (day, values) in enumerate(shown):
        y = top_pad + r * cell
        body.append(f'<text class="label" x="{left - 8}" y="{y + 18}" '
                    f'text-anchor="end">{escape(day)}</text>')
        for h, value in enumerate(values):
            x = left + h * cell
            tip = f"{day} {h:02d}:00–{h + 1:02d}:00"
            if isinstance(value, int):
                fill = STEPS[min(len(STEPS) - 1, round((len(STEPS) - 1) * value / top))] \
                    if value else "#ffffff"
                body.append(f'<rect class="heat" x="{x}" y="{y}" width="{cell - 2}" '
                            f'height="{cell - 2}" fill="{fill}"><title>{escape(tip)}: {value}'
                            f'</title></rect>')
            else:
                body.append(_stub(table, x, y, cell - 2, cell - 2, tip, value))
    legend_y = top_pad + 7 * cell + 8
    for i, colour in enumerate(STEPS):
        body.append(f'<rect x="{left + i * 30}" y="{legend_y}" width="28" height="12" '
                    f'fill="{colour}"/>')
    body.append(f'<text class="tick" x="{left + len(STEPS) * 30 + 6}" y="{legend_y + 11}">'
                f'up to {top} contacts; hatched: fewer than {report.k} (possibly none) or '
                f'hidden</text>')
    return _svg(table, left + 24 * cell + 10, legend_y + 22, body)
