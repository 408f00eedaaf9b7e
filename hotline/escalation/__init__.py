"""Escalation as data: the policy (``ivr_flows/escalation.yaml``, ``policy``), the one
runner that executes it for calls, texts and callbacks (``runner``), and the auditor that
finds what a lost webhook or job left stuck (``auditor``).

``routing`` is the pick itself: round-robin (least recently offered first) and the atomic
reservation of a supporter, one conditional ``UPDATE ... RETURNING``.
"""
