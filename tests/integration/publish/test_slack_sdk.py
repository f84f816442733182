"""The Slack alert sent through the real slack_sdk to the API double: delivered once, remembered
only when delivered, retried after a 429's Retry-After, loud (and credential-free) on ok=false."""

from __future__ import annotations

import json

import pytest
from ccwatch.common.endpoints import Endpoint
from ccwatch.publish.slack import SlackSendError, build_slack_message, mark_alerted, send_slack
from ccwatch.sandbox import SandboxResponse, SandboxServer

from tests.helpers import outputs_world as D

REPORT = "/data/evidence/2026-11-25/report.html"
SLACK_TOKEN = "xoxb-test-0123456789-SECRET"


def _scenario():
    return {"meta": {"name": "notify", "as_of": "2026-11-25T00:00:00Z"}, "auth": {"slack_token": SLACK_TOKEN},
            "slack": {"channels": {"compliance-alerts": "C0CCWATCH1", "closed": {"id": "C0CLOSED", "member": False}}}}


def test_send_through_slack_sdk_to_sandbox_then_remember():
    con = D.build()
    msg = build_slack_message(con, D.settings(), D.AS_OF, REPORT)
    with SandboxServer(_scenario()) as sb:
        resp = send_slack(Endpoint(base_url=f"{sb.url}/api/", token=SLACK_TOKEN), "#compliance-alerts", msg)
        posted = sb.slack_messages
        reqs = sb.requests
    assert resp["ok"] is True and resp["channel"] == "C0CCWATCH1" and resp["ts"]
    assert len(posted) == 1 and posted[0]["blocks"] == msg["blocks"] and posted[0]["text"] == msg["text"]
    assert "ccwatch" not in posted[0]  # the private alert memory is never sent
    assert posted[0]["unfurl_links"] in (False, "0", "false", 0)
    assert SLACK_TOKEN not in json.dumps(posted) + json.dumps(reqs)
    assert [r["path"] for r in reqs] == ["/api/chat.postMessage"]
    mark_alerted(con, D.AS_OF, msg, ts=resp["ts"])
    assert con.execute("SELECT DISTINCT message_ts FROM slack_alerts").fetchall() == [(resp["ts"],)]


def test_rate_limit_429_is_retried_after_retry_after():
    calls = []

    def hook(service, req, resp):
        if service == "slack":
            calls.append(req.path)
            if len(calls) == 1:
                return SandboxResponse(status=429, data={"ok": False, "error": "ratelimited"},
                                               headers={"Retry-After": "0"})
        return None

    con = D.build()
    msg = build_slack_message(con, D.settings(), D.AS_OF, REPORT)
    with SandboxServer(_scenario()) as sb:
        sb.fault_hook = hook
        resp = send_slack(Endpoint(base_url=f"{sb.url}/api/", token=SLACK_TOKEN), "#compliance-alerts", msg)
        statuses = [r["status"] for r in sb.requests]
        delivered = list(sb.slack_messages)
    assert resp["ok"] and statuses == [429, 200]
    assert len(delivered) == 1, "the retried post is delivered exactly once"


@pytest.mark.parametrize(("token", "channel", "error"), [
    ("xoxb-wrong-token-SECRET", "#compliance-alerts", "invalid_auth"),
    (SLACK_TOKEN, "#nope", "channel_not_found"),
    (SLACK_TOKEN, "#closed", "not_in_channel"),
])
def test_ok_false_raises_without_token_and_nothing_is_remembered(token, channel, error):
    con = D.build()
    msg = build_slack_message(con, D.settings(), D.AS_OF, REPORT)
    with SandboxServer(_scenario()) as sb:
        with pytest.raises(SlackSendError) as exc:
            send_slack(Endpoint(base_url=f"{sb.url}/api/", token=token), channel, msg)
    assert error in str(exc.value) and "SECRET" not in str(exc.value)
    assert con.execute("SELECT count(*) FROM slack_alerts").fetchone()[0] == 0
    assert build_slack_message(con, D.settings(), D.AS_OF, REPORT) is not None  # will be retried next run
