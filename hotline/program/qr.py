"""QR codes as inline SVG, drawn by segno (pure Python): nothing fetched, nothing tracked.

A ``tel:`` URI for the number (a phone's camera offers to call it) and the page's URL.
Error correction M (15%): a poster can take a scuff and still scan.
"""

from __future__ import annotations

import io

import segno
from markupsafe import Markup


def tel_uri(number: str) -> str:
    return "tel:" + number.replace(" ", "")


def svg(content: str, label: str) -> Markup:
    """The QR code of ``content`` as an <svg> element named ``label`` for screen readers
    (scales with CSS: a viewBox and no fixed size; a 4-module quiet zone)."""
    out = io.BytesIO()
    segno.make(content, error="m", micro=False).save(
        out, kind="svg", xmldecl=False, svgns=True, nl=False, omitsize=True, border=4,
        title=label, svgclass="qr", lineclass="qr-line", dark="#000", light="#fff")
    drawing = out.getvalue().decode("utf-8")
    return Markup(drawing.replace("<svg ", '<svg role="img" ', 1))
