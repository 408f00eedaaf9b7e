"""Statistics: the exact counts behind the dashboard (``hotline.stats``, ``hotline.stats_cache``)
and the typed record a cached day is stored as (``records``)."""
