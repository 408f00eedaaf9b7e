"""Coordinator side: accounts and shifts (filled in by the dashboard work)."""

__all__: list[str] = []
