"""The Slack side of the sandbox, driven only through slack_sdk's WebClient."""

from __future__ import annotations

import json
import urllib.request

import pytest
from ccwatch.sandbox import SandboxServer
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

TOKEN = "xoxb-sandbox-test"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*2 failing controls*"}}]


@pytest.fixture()
def server():
    scenario = {"meta": {"as_of": "2026-11-25T00:00:00Z"}, "auth": {"slack_token": TOKEN},
                "slack": {"channels": {"compliance-alerts": "C0CCWATCH1", "#ops": {"id": "C0OPS", "member": False}}}}
    with SandboxServer(scenario) as srv:
        yield srv


def web(srv, token=TOKEN) -> WebClient:
    return WebClient(token=token, base_url=srv.url + "/api/")


def test_auth_test_and_conversations_list(server):
    auth = web(server).auth_test()
    assert auth["ok"] is True and auth["team_id"] and auth["user_id"]
    listing = web(server).conversations_list(limit=1)
    assert [c["name"] for c in listing["channels"]] == ["compliance-alerts"]
    cursor = listing["response_metadata"]["next_cursor"]
    assert cursor
    second = web(server).conversations_list(limit=1, cursor=cursor)
    assert [c["id"] for c in second["channels"]] == ["C0OPS"] and second["response_metadata"]["next_cursor"] == ""


@pytest.mark.parametrize("channel", ["#compliance-alerts", "compliance-alerts", "C0CCWATCH1"])
def test_post_message_accepts_names_and_ids_and_records_payload(server, channel):
    resp = web(server).chat_postMessage(channel=channel, text="2 failing controls", blocks=BLOCKS)
    assert resp.status_code == 200 and resp["ok"] is True and resp["channel"] == "C0CCWATCH1" and resp["ts"]
    assert resp["message"]["blocks"] == BLOCKS
    assert server.slack_messages == [{"channel": channel, "text": "2 failing controls", "blocks": BLOCKS}]
    with urllib.request.urlopen(server.url + "/_sandbox/slack/messages") as http:
        assert json.loads(http.read())[0]["blocks"] == BLOCKS


def test_form_encoded_post_is_decoded(server):
    resp = web(server).api_call("chat.postMessage", data={"channel": "#compliance-alerts", "text": "hi", "blocks": json.dumps(BLOCKS)})
    assert resp["ok"] is True
    assert server.slack_messages[0]["blocks"] == BLOCKS  # the JSON string was decoded


@pytest.mark.parametrize(
    ("token", "kwargs", "error"),
    [
        (TOKEN, {"channel": "#nope", "text": "x"}, "channel_not_found"),
        (TOKEN, {"channel": "#ops", "text": "x"}, "not_in_channel"),
        (TOKEN, {"channel": "#compliance-alerts"}, "no_text"),
        ("xoxb-wrong", {"channel": "#compliance-alerts", "text": "x"}, "invalid_auth"),
        (None, {"channel": "#compliance-alerts", "text": "x"}, "not_authed"),
    ],
)
def test_errors_are_http_200_with_ok_false(server, token, kwargs, error):
    with pytest.raises(SlackApiError) as exc:
        web(server, token=token).chat_postMessage(**kwargs)
    assert exc.value.response.status_code == 200
    assert exc.value.response["ok"] is False and exc.value.response["error"] == error
    assert server.slack_messages == []


def test_requests_are_recorded_without_tokens(server):
    web(server).chat_postMessage(channel="#compliance-alerts", text="x")
    log = server.requests
    assert log == [{"method": "POST", "path": "/api/chat.postMessage", "query": {}, "status": 200, "service": "slack"}]
    assert TOKEN not in json.dumps(log)
