"""ccwatch.ingest."""
