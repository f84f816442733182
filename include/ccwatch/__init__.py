"""ccwatch: continuous SOC 2 CC8.1 change-management evidence (pure core, no Airflow imports)."""

__version__ = "0.1.0"
