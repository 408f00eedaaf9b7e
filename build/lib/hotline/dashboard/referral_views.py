"""The referral page: ask for a peer to reach out to a colleague (``hotline.outreach``).

Open to referrer accounts (the only page they may open), coordinators and admins. It asks
the colleague's mobile number and, optionally, their language: nothing else, and it says
why. Whatever happens next (a text, the quiet period, an opt-out, the rate limit), the
page answers the same: "we will reach out". The account is never stored with the
outreach; its daily limit is a Redis counter under a keyed hash of the account's id.
"""

from __future__ import annotations

from flask import render_template, request

from hotline.core import phones
from hotline.core.extensions import db, settings
from hotline.dashboard import access
from hotline.dashboard.views import bp
from hotline.outreach import referrals
from hotline.telephony import outbound


def _languages() -> dict[str, str]:
    """Language code: name, as the colleague's text may be written."""
    return {code: language.name for code, language in outbound.text_flows().languages.items()}


@bp.route("/refer", methods=["GET", "POST"])
@access.referral
def refer_page():
    """The form; on a number that parses, the same thanks whatever follows."""
    languages = _languages()
    if request.method == "GET":
        return render_template("dashboard/refer.html", languages=languages, sent=False,
                               error=None)
    number = phones.try_normalize(request.form.get("phone"))
    if number is None:
        return render_template("dashboard/refer.html", languages=languages, sent=False,
                               error="Enter your colleague's mobile number, with its area "
                                     "code."), 400
    cfg = settings()
    language = request.form.get("language") or None
    referrals.refer(db.session, number, language if language in languages else None,
                    referrer=referrals.referrer_tag("account", str(access.current_user().id),
                                                    cfg),
                    limit=cfg.OUTREACH_PER_REFERRER)
    return render_template("dashboard/refer.html", languages=languages, sent=True, error=None)
