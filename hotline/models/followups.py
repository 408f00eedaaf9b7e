"""Follow-ups, consent and outcome measures (filled in by the follow-up work)."""

__all__: list[str] = []
