"""Task failure callback: a failed stage posts a pipeline-failure alert to Slack.

A failed fetch must never read as "all clear": the nightly alert only runs when every
stage succeeded, and this callback tells the channel when one did not.  When the task failed
because the configuration file does not load, the alert still goes out: through the Slack
connection and channel the file names when they can be read from it, else the defaults
(``slack_api_default``, ``CCWATCH_ALERT_CHANNEL`` or ``#compliance-alerts``), saying that the
config is broken and where.
"""

from __future__ import annotations

import logging

log = logging.getLogger("ccwatch")


def alert_pipeline_failure(context) -> None:
    from ccwatch.publish import slack
    from ccwatch.settings import ConfigError, load_settings

    from ccwatch_airflow.connections import configured_endpoint, fallback_alert_endpoint

    ti = context.get("task_instance") or context.get("ti")
    error = context.get("exception")
    dag_id = getattr(ti, "dag_id", "ccwatch_nightly")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    try:
        try:
            settings = load_settings()
        except ConfigError as exc:  # the task failed on it too: say so through the fallback target
            (endpoint, channel), broken = fallback_alert_endpoint(), exc
        else:
            endpoint, channel, broken = configured_endpoint(settings, "slack"), settings.slack.channel, None
        message = slack.build_pipeline_failure_message(dag_id, run_id, task_id, str(broken or error),
                                                       config_broken=broken is not None)
        slack.send_slack(endpoint, channel, message)
    except Exception as exc:  # the callback must never mask the task's own failure
        log.error("ccwatch: could not post the pipeline-failure alert to Slack: %s", exc)
