"""What may be published: the report's cells and lines (``report``), small-cell and
complementary suppression (``suppression``), the exact checks (``elimination``,
``simplex``, ``witness``) and decisions across every published period (``joint``). See
docs/statistics.md.
"""
