"""ccwatch.publish.report."""
