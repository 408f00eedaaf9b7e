"""Team debriefs (issue 17): a group call for a team after a hard event.

``meetings`` schedules a debrief (a start, minutes, one or two facilitating supporters),
issues its 6-digit meeting code (stored only as a keyed hash while live), checks codes
entered by phone (three tries a call, rate-limited per calling number and overall, valid
from 15 minutes before the start to the end) and ends it: the code, times and facilitators
are then cleared and only the day and the number of participants stay. ``room`` ends the
Twilio conference and warns a minute before the time is up (REST, hotline.telephony.api).
``reminders`` texts the facilitators the day before and 15 minutes before, exactly once,
the follow-ups' way. ``texts`` loads ivr_flows/debriefs.yaml. The adapters are
hotline/voice/debrief.py (joining by phone), the dashboard's debriefs page, ``hotline
debriefs`` (CLI) and workers/debriefs.py (jobs). Participants' numbers are never stored.
"""
