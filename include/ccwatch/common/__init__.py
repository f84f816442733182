"""ccwatch.common."""
