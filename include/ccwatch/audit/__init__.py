"""ccwatch.audit."""
