"""The hostile org: the demo org with PR titles, logins and ticket text built to break outputs,
and a fault hook that serves it as JSON with \\uXXXX escapes (lone surrogates included).

Used by tests/integration/pipeline/test_hostile_data.py and the SQL-vs-Python detail test.
"""

from __future__ import annotations

import copy
import dataclasses
import json

from ccwatch.demo_env import DEMO_AUTH

from tests.helpers.paths import DEMO_SCENARIO

PAY = "acme/payments-api"
HIGH, LOW = "@@LONE_HIGH@@", "@@LONE_LOW@@"  # sent on the wire as the JSON escapes \ud800 and \udfff

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
MRKDWN = "<!channel> <http://evil.example|click here> *bold* _it_ ~s~ `code` &amp;"
CONTROL = f"\x00\x07\x1b[31m\r\n\t 🚀 {HIGH} {LOW} \ufffd é"
BAD_LOGIN = '"><svg onload=alert(5)>'
# number -> new title (hostile prefix + the original title keeps its ticket key, so verdicts stay)
PREFIX = {120: "x" * 100_000 + " ", 123: SCRIPT + " ", 124: IMG + " ", 128: MRKDWN + " ", 129: CONTROL + " "}
# number -> (title, body, expected ticket_key, expected out-of-scope keys seen first)
KEYS = {
    146: ("FIX: payout batch ordering", "Implements PAY-324", None, ""),  # key in the body only
    148: ("FIX: FX rate cache TTL [pay-326]", "", None, ""),  # lowercase key
    152: ("FIX: refund status polling [ZZZ-9] [PAY-328] [PAY-329]", "", "PAY-328", "ZZZ-9"),  # several keys
    153: ("FEAT: payout holds API https://acme.atlassian.net/browse/PAY-329?x=<b>", "", "PAY-329", ""),  # in a URL
}


def stored(text: str) -> str:
    return text.replace(HIGH, "\ufffd").replace(LOW, "\ufffd")


def hostile_scenario() -> dict:
    s = json.loads(DEMO_SCENARIO.read_text(encoding="utf-8"))
    s["auth"] = dict(DEMO_AUTH)
    repo = s["github"]["repos"][PAY]
    pulls = {x["number"]: x for x in repo["pulls"]}
    for n, prefix in PREFIX.items():
        pulls[n]["title"] = prefix + pulls[n]["title"]
    for n, (title, body, _, _) in KEYS.items():
        pulls[n]["title"], pulls[n]["body"] = title, body
    reviews = repo["reviews"]["139"]
    reviews.append({**copy.deepcopy(reviews[-1]), "id": 990001, "user": BAD_LOGIN, "state": "COMMENTED",
                    "body": SCRIPT})
    s["jira"]["issues"]["PAY-305"]["summary"] = IMG + " summary"
    return s


def ascii_json(svc, req, resp):
    """Serve JSON with \\uXXXX escapes, the lone surrogates put in as the escapes real APIs send."""
    if resp.data is not None and resp.raw is None:
        text = json.dumps(resp.data, separators=(",", ":"))
        return dataclasses.replace(resp, raw=text.replace(HIGH, "\\ud800").replace(LOW, "\\udfff").encode("ascii"))
    return None
