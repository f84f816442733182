"""Airflow-facing glue for ccwatch: connections -> endpoints, and the pipeline-failure alert.

Nothing here computes anything about controls; it only translates Airflow concepts
(connections, task contexts) into the plain values the pure core takes.
"""
