"""The DAGs, the whole run end to end, the Celery stack, the deployment files, the benchmarks."""
