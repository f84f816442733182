"""ccwatch.ingest.http."""
