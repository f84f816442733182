"""ccwatch.warehouse.normalize."""
