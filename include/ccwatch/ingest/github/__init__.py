"""ccwatch.ingest.github."""
