"""The voice path: the caller's menu and queue (``views``), the supporter's offer leg
(``offer_leg``), the number's fallback URL (``fallback``) and the voice flows of
ivr_flows/ (``flows``).
"""
