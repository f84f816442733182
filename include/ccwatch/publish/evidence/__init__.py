"""ccwatch.publish.evidence."""
