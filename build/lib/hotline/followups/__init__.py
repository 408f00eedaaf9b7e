"""Consented check-in texts: asking for consent (``consent``), when they go out and
what a reply means (``schedule``).
"""
