"""The staff pulse survey (issue 19): survey windows and their anonymous ballots.

A window is what a coordinator opens and closes: a title and two moments. A response holds
the answers, the window it was given in and a coarse role, and nothing else:

* no time: the window is the finest time a ballot has (a submission moment could be matched
  with who was seen at a workstation, or with a web server's own request times);
* no address, no user agent, no cookie or session id, no account: the survey is public;
* its id is random, not a sequence: an increasing id would keep the order of submissions,
  which is a time in disguise (the third ballot after the access log's 10:02 request).
  Results only ever read counts.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime

__all__ = ["PulseWindow", "PulseResponse", "random_id"]

#: The role a respondent gives when they prefer not to say (beside roster.yaml's roles).
PREFER_NOT_TO_SAY = "prefer_not_to_say"


def random_id() -> int:
    """A positive 62-bit random id: unique in practice, and saying nothing of order."""
    return secrets.randbits(62) or 1


class PulseWindow(Base):
    """One survey window: open while ``closed_at`` is None; closed for good afterwards."""
    __tablename__ = "pulse_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)


class PulseResponse(Base):
    """One anonymous ballot: its window, a coarse role and the answers (see the module)."""
    __tablename__ = "pulse_responses"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False,
                                    default=random_id)
    window_id: Mapped[int] = mapped_column(ForeignKey("pulse_windows.id"), index=True)
    #: A role of ivr_flows/roster.yaml, or "prefer_not_to_say".
    role: Mapped[str] = mapped_column(String(32))
    #: The Mini-Z single item: 1 (I enjoy my work) to 5 (completely burned out); 3+ is burnout.
    burnout: Mapped[int] = mapped_column(SmallInteger)
    #: Knows how to reach the peer support line.
    knows_line: Mapped[bool] = mapped_column(Boolean)
    #: Has used it.
    used_line: Mapped[bool] = mapped_column(Boolean)
    #: How likely they would be to use it: 1 (very unlikely) to 5 (very likely).
    likely: Mapped[int] = mapped_column(SmallInteger)
