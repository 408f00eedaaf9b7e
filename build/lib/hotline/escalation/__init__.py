"""Escalation as data: the policy (``ivr_flows/escalation.yaml``, ``policy``), the one
runner that executes it for calls, texts and callbacks (``runner``), and the auditor that
finds what a lost webhook or job left stuck (``auditor``).

The pick itself (round-robin, the atomic reservation of a supporter) is an offer's state
change: ``hotline.lifecycle.routing``.
"""
