"""Program inputs a coordinator enters for each calendar quarter (``hotline/leadership``).

Staff figures about the program itself, put next to its usage in the leadership report:
the staff headcount the program serves, the staff turnover rate, and how many supporters
were trained. No clinician, contact or caller is in here: a row is a quarter and three
numbers a coordinator typed, each optional (not known yet), and who last changed them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow

__all__ = ["ProgramInputs"]


class ProgramInputs(Base):
    __tablename__ = "program_inputs"

    #: The calendar quarter, as ``hotline.statistics.periods`` names it: "2026-Q1".
    quarter: Mapped[str] = mapped_column(String(7), primary_key=True)
    staff_headcount: Mapped[int | None] = mapped_column(Integer)
    #: Percent of staff who left during the quarter, one decimal (12.5).
    turnover_percent: Mapped[float | None] = mapped_column(Float)
    supporters_trained: Mapped[int | None] = mapped_column(Integer)
    #: The coordinator's email who last saved the row (staff, shown on the form).
    updated_by: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                 onupdate=utcnow)
