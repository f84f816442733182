"""Stage 2, raw -> tables -> facts: ``schema`` (DuckDB DDL), ``store`` (the atomic load),
``normalize/`` (raw payloads -> rows), ``runs`` (how far each date got), ``ingest_state`` (what
the next fetch needs), ``facts`` (the facts every control shares), ``population`` (each run's
population, for auditor samples)."""
