"""The public page (``/``), the poster (``/poster?size=a4|letter``) and the wallet cards
(``/card?size=...``): no login, no cookie, nothing from another origin.

The language is ``?lang=`` when it names one of languages.yaml, else the browser's
Accept-Language, else the default; every page links to the others in its language.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from hotline.core import flows
from hotline.core.extensions import db, settings
from hotline.core.urls import public_url
from hotline.program import facts, qr, texts

bp = Blueprint("program", __name__, template_folder="templates", static_folder="static",
               static_url_path="/program/static")

#: Paper sizes of the poster and the cards (each has its own @page stylesheet).
SIZES = ("letter", "a4")


def language() -> str:
    offered = flows.offered()
    asked = request.args.get("lang", "")
    if asked in offered:
        return asked
    return request.accept_languages.best_match(offered) or flows.DEFAULT_LANGUAGE


def _context(lang: str) -> dict[str, Any]:
    cfg = settings()
    own = {} if lang == flows.DEFAULT_LANGUAGE else {"lang": lang}
    page_url = public_url("program.page", "GET", **own)
    filled = facts.values(cfg, lang, page_url)
    words = {key: [str(w) for w in text] if isinstance(text, list) else text.format(**filled)
             for key, text in texts.current().table(lang).items()}
    return {
        "lang": lang, "t": words, "v": filled, "own": own, "page_url": page_url,
        "tel": qr.tel_uri(cfg.HOTLINE_NUMBER), "sms": "sms:" + cfg.HOTLINE_NUMBER,
        "crisis_tel": qr.tel_uri(cfg.CRISIS_LINE_NUMBER),
        "crisis_sms": "sms:" + cfg.CRISIS_LINE_NUMBER,
        "languages": [(code, spoken.name) for code, spoken in flows.current().languages.items()],
        "pulse_url": public_url("pulse.survey", "GET", **own),  # the survey, on the poster
    }


def _codes(context: dict[str, Any]) -> dict[str, Any]:
    words = context["t"]
    return {"qr_call": qr.svg(context["tel"], words["qr_call"]),
            "qr_page": qr.svg(context["page_url"], words["qr_page"])}


def _page(template: str, **context: Any) -> Response:
    response = Response(render_template(template, **context))
    response.vary.add("Accept-Language")
    return response


@bp.get("/")
def page() -> Response:
    context = _context(language())
    cfg = settings()
    hours = facts.hours(db.session)
    return _page("program/page.html", **context, hours=hours, clock_end=facts.clock_end,
                 clock=facts.clock, promise=facts.promise(cfg), trained=cfg.REQUIRE_TRAINING,
                 sizes=SIZES)


def _size() -> str:
    size = request.args.get("size", SIZES[0])
    if size not in SIZES:
        abort(404)
    return size


@bp.get("/poster")
def poster() -> Response:
    context = _context(language())
    return _page("program/poster.html", **context, **_codes(context), size=_size())


@bp.get("/card")
def card() -> Response:
    context = _context(language())
    return _page("program/card.html", **context, **_codes(context), size=_size())
