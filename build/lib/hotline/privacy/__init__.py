"""Confidentiality: keyed caller keys and sealed numbers (``primitives``), key rotation
(``keys``, ``key_commands``) and the redacting access log. What is deleted, and when, is
``hotline.retention``.
"""
