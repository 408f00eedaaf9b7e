"""Alerts to the coordinators when the line could fail a caller (issue 18).

``conditions`` (what is checked: nobody on shift now or within the hour inside the program's
hours, contacts ending without a peer, the fallback webhooks used, no worker heartbeat,
training lapses leaving a shift uncovered, an hour ahead under the staffing advice of
``hotline.staffing.coverage``), ``notify`` (one open alert per condition,
repeated after an interval, resolved once; texts, webhook, dashboard banner), ``signals``
(the Redis markers: heartbeat, fallback hits) and ``words`` (ivr_flows/alerts.yaml).
"""
