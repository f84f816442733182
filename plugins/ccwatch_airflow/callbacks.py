"""Task failure callback: a failed stage posts a pipeline-failure alert to Slack.

A failed fetch must never read as "all clear": the nightly alert only runs when every
stage succeeded, and this callback tells the channel when one did not.
"""

from __future__ import annotations

import logging

log = logging.getLogger("ccwatch")


def alert_pipeline_failure(context) -> None:
    from ccwatch.publish import slack as notify
    from ccwatch.settings import load_settings

    from ccwatch_airflow.connections import configured_endpoint

    ti = context.get("task_instance") or context.get("ti")
    error = context.get("exception")
    dag_id = getattr(ti, "dag_id", "ccwatch_nightly")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    try:
        settings = load_settings()
        endpoint = configured_endpoint(settings, "slack")
        message = notify.build_pipeline_failure_message(dag_id, run_id, task_id, str(error))
        notify.send_slack(endpoint, settings.slack.channel, message)
    except Exception as exc:  # the callback must never mask the task's own failure
        log.error("ccwatch: could not post the pipeline-failure alert to Slack: %s", exc)
