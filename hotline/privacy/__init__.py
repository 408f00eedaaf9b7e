"""Confidentiality: keyed caller keys and sealed numbers (``primitives``), key rotation
(``keys``, ``key_commands``), the redacting access log, what the daily purge deletes
(``retention``) and the message records kept until Twilio has blanked each body
(``message_records``).
"""
