"""ccwatch.publish."""
