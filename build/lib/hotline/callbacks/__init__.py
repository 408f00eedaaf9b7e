"""Callbacks: a peer calls the clinician back, as promised, on a bounded schedule
(``requests``).
"""
