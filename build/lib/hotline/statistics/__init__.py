"""Exact counts: one set of query builders for the live path and the cached days
(``queries``), the cache of settled days (``days``, records in ``records``) and the
published periods (``periods``). Nothing here decides what may be shown: that is
``hotline.disclosure``.
"""
