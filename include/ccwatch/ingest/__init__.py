"""Stage 1, fetch: raw API payloads through the real clients, staged for the load (no derivation).

A fetch either stages every record of a complete fetch or raises
:class:`ccwatch.ingest.errors.SourceError`: a partial fetch must never look complete
(CONTROLS.md: "An error fetching a source is not a status: the run fails loudly").
Nothing here imports the warehouse or later stages.
"""
