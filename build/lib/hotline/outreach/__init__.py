"""Outreach: a colleague asks for a peer to reach out to someone after a hard event.

``referrals`` holds the rules: who may refer (a referrer or coordinator account on the
dashboard, a coordinator by ``hotline outreach send``, any clinician by calling or texting
the hotline), the limits (one outreach per number per HOTLINE_OUTREACH_QUIET_DAYS, never to
a number that opted out, per-referrer and per-calling-number rate limits, quiet hours as
for the follow-ups), the one discreet text and what its answer does (YES: a callback
request, routed like every other; NO, STOP or silence: the end, and the number goes).

Whatever happens, the referrer is told the same thing ("we will reach out"), and nothing
links them to the outreach: no referrer column; the rate limits are Redis counters keyed
by a keyed hash, expiring by themselves. Nothing about the event is ever asked or stored.
The adapters (dashboard page, voice menu choice, text keyword, CLI, jobs in
``workers/outreach.py``) only call in here.
"""
