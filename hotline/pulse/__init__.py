"""The staff pulse survey (issue 19, part 3): anonymous answers from any staff member, in
windows a coordinator opens and closes, reported by window and role under the program's k.

``survey`` (windows, taking a ballot, the daily keyed rate limit), ``results`` (counts,
suppression, trends across windows: the one reader of the ballots), ``words``
(ivr_flows/pulse.yaml). The pages are the dashboard's (``hotline.dashboard.pulse_views``:
the public ``/pulse`` and the coordinators' ``/dashboard/pulse``), which own sessions and
CSRF. What is kept: hotline/models/pulse.py.
"""
