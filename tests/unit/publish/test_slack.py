"""Slack alert: content, mrkdwn escaping, truncation, alert memory (tests/integration/publish/test_slack_sdk.py
sends it through slack_sdk to the API double)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from ccwatch.publish.slack import (
    MAX_BLOCKS,
    MAX_SECTION,
    build_pipeline_failure_message,
    build_slack_message,
    mark_alerted,
)

from tests.helpers import outputs_world as D

REPORT = "/data/evidence/2026-11-25/report.html"
DAY2 = datetime(2026, 11, 26, tzinfo=UTC)
DAY3 = datetime(2026, 11, 27, tzinfo=UTC)
SLACK_TOKEN = "xoxb-test-0123456789-SECRET"


def _texts(message: dict) -> list[str]:
    out = []
    for b in message["blocks"]:
        if "text" in b:
            out.append(b["text"]["text"])
        for e in b.get("elements", []) + b.get("fields", []):
            out.append(e["text"])
    return out


def _all_text(message: dict) -> str:
    return "\n".join(_texts(message) + [message["text"]])


def _day_rows(as_of, changes: dict[tuple[str, str], str]):
    rows = [(as_of.replace(tzinfo=None), c, c.split("#")[0].split("@")[0], k, "pass", "ok")
            for c in ("acme/payments-api#12", "acme/payments-api#13") for k in D.CONTROLS]
    rows = [r for r in rows if (r[1], r[3]) not in changes]
    rows += [(as_of.replace(tzinfo=None), c, c.split("#")[0], k, st, f"{k} {st} on {as_of:%m-%d}")
             for (c, k), st in changes.items()]
    return rows


def test_first_message_counts_links_and_details():
    con = D.build()
    msg = build_slack_message(con, D.settings(), D.AS_OF, REPORT)
    assert msg is not None
    assert msg["text"].startswith("ccwatch 2026-11-25: 5 new CC8.1 control failures")
    assert "CC8.1-03: 1" in msg["text"] and "CC8.1-10: 1" in msg["text"]
    text = _all_text(msg)
    assert "*New failures per control*" in text and "• *CC8.1-03* Independent peer review: 1" in text
    assert ("<https://github.com/acme/payments-api/pull/12|acme/payments-api#12> · "
            "<https://acme.atlassian.net/browse/PAY-7|PAY-7>") in text
    assert "no APPROVED review by anyone but carol-dev (1 review: carol-dev COMMENTED)" in text
    assert f"<https://github.com/acme/web-frontend/commit/{D.PUSH}|" in text
    assert "classic protection: Branch not protected" in text  # repository-level failure
    assert f"`{REPORT}`" in text
    assert sorted((a["change_id"], a["control_id"]) for a in msg["ccwatch"]["alerted"]) == sorted([
        ("acme/payments-api", "CC8.1-11"), ("acme/payments-api#12", "CC8.1-03"),
        ("acme/payments-api#13", "CC8.1-01"), ("acme/web-frontend", "CC8.1-12"),
        (f"acme/web-frontend@{D.PUSH}", "CC8.1-10")])
    json.dumps(msg)  # JSON-serialisable


def test_hostile_text_is_escaped_for_mrkdwn():
    con = D.build()
    msg = build_slack_message(con, D.settings(), D.AS_OF, "https://reports.acme.example/x?a=1&b=<2>")
    text = _all_text(msg)
    assert "<!channel>" not in text and "<http://evil" not in text and "<script" not in text
    assert "&lt;!channel&gt; &lt;http://evil.example|click&gt; &amp;" in text
    # every '<' opens one of our links to a plain https URL, and its label holds no '<'
    for m in re.finditer(r"<([^>]*)>", text):
        url, _, label = m.group(1).partition("|")
        assert re.fullmatch(r"https://[^\s<>|]+", url) and label and "<" not in label, m.group(0)
    assert "javascript:" not in text  # the unsafe ticket URL is plain text
    assert " · PAY-8 " in text
    assert "|report>" not in text  # a report location that is not a plain URL is not linked


def test_alert_memory_no_repeat_and_resolved_once():
    con = D.build()
    s = D.settings()
    first = build_slack_message(con, s, D.AS_OF, REPORT)
    assert mark_alerted(con, D.AS_OF, first) == 5
    assert build_slack_message(con, s, D.AS_OF, REPORT) is None  # rerun of the date: nothing new

    # next day: #12 CC8.1-03 cleared, #12 CC8.1-05 newly failing, #13 CC8.1-01 still failing
    D.set_results(con, DAY2, _day_rows(DAY2, {("acme/payments-api#12", "CC8.1-05"): "fail",
                                             ("acme/payments-api#13", "CC8.1-01"): "fail"}))
    second = build_slack_message(con, s, DAY2, REPORT)
    assert [(a["change_id"], a["control_id"]) for a in second["ccwatch"]["alerted"]] == [
        ("acme/payments-api#12", "CC8.1-05")]
    assert [(r["change_id"], r["control_id"], r["status"]) for r in second["ccwatch"]["resolved"]] == [
        ("acme/payments-api#12", "CC8.1-03", "pass")]
    text = _all_text(second)
    assert "*Resolved since the last alert* (1)" in text and "*CC8.1-03* Independent peer review now pass" in text
    assert "CC8.1-01" not in text  # still failing, already alerted
    assert second["text"].endswith("; 1 resolved")
    mark_alerted(con, DAY2, second)
    assert build_slack_message(con, s, DAY2, REPORT) is None

    # day 3: the resolved failure comes back -> alerted again; nothing else repeats
    D.set_results(con, DAY3, _day_rows(DAY3, {("acme/payments-api#12", "CC8.1-05"): "fail",
                                             ("acme/payments-api#12", "CC8.1-03"): "fail",
                                             ("acme/payments-api#13", "CC8.1-01"): "fail"}))
    third = build_slack_message(con, s, DAY3, REPORT)
    assert [(a["change_id"], a["control_id"]) for a in third["ccwatch"]["alerted"]] == [
        ("acme/payments-api#12", "CC8.1-03")]
    assert third["ccwatch"]["resolved"] == []
    states = con.execute("SELECT state, count(*) FROM slack_alerts GROUP BY state ORDER BY state").fetchall()
    assert states == [("alerted", 6), ("resolved", 1)]


def test_only_resolved_message():
    con = D.build()
    s = D.settings()
    mark_alerted(con, D.AS_OF, build_slack_message(con, s, D.AS_OF, REPORT))
    D.set_results(con, DAY2, _day_rows(DAY2, {}))
    msg = build_slack_message(con, s, DAY2, REPORT)
    assert msg["text"] == "ccwatch 2026-11-26: 2 CC8.1 failures resolved"
    assert len(msg["ccwatch"]["resolved"]) == 2  # only rows present today count as resolved


def test_truncation_within_slack_limits():
    con = D.build(with_results=False)
    rows = [(D.AS_OF.replace(tzinfo=None), f"acme/payments-api#{n}", "acme/payments-api", "CC8.1-03", "fail",
             "x" * 300 + f" <!here> & #{n}") for n in range(1000, 1200)]
    # many controls too, to exercise the 50-block limit
    rows += [(D.AS_OF.replace(tzinfo=None), "acme/payments-api#1", "acme/payments-api", f"CC8.1-{n:03d}", "fail",
              "short") for n in range(100, 170)]
    D.set_results(con, D.AS_OF, rows)
    msg = build_slack_message(con, D.settings(), D.AS_OF, REPORT)
    assert len(msg["blocks"]) <= MAX_BLOCKS
    for t in _texts(msg):
        assert len(t) <= MAX_SECTION
    review = next(t for t in _texts(msg) if t.startswith("*CC8.1-03 Independent peer review* (200 new)"))
    shown = review.count("\n• ")
    more = int(re.search(r"… and (\d+) more$", review).group(1))
    assert shown > 0 and shown + more == 200
    last = msg["blocks"][-1]["text"]["text"]
    assert re.fullmatch(r"… and \d+ more failing change\(s\) in \d+ more control\(s\); see the report", last)
    assert len(msg["ccwatch"]["alerted"]) == 270  # all new failures are remembered, shown or summarised


def test_nothing_to_say_returns_none():
    con = D.build(with_results=False)
    assert build_slack_message(con, D.settings(), D.AS_OF, REPORT) is None
    D.set_results(con, D.AS_OF, _day_rows(D.AS_OF, {}))
    assert build_slack_message(con, D.settings(), D.AS_OF, REPORT) is None


def test_pipeline_failure_message_is_escaped_and_scrubbed():
    err = (f"GithubException: 401 at https://bot:{D.SECRET}@api.github.com/x token={SLACK_TOKEN} "
           "<!channel> ```" + "y" * 5000)
    msg = build_pipeline_failure_message("ccwatch_nightly", "manual__2026-11-25", "ingest_github", err)
    text = json.dumps(msg)
    assert D.SECRET not in text and SLACK_TOKEN not in text and "SECRET" not in text
    assert "<!channel>" not in _all_text(msg)
    assert all(len(t) <= MAX_SECTION for t in _texts(msg))
    assert "ingest_github" in msg["text"] and "not an all-clear" in _all_text(msg)
    assert _texts(msg)[-2].count("```") == 2


def test_new_repository_controls_are_alerted_with_their_names():
    """(r2) CC8.1-14 and CC8.1-15 flow through the alert like the other repository controls."""
    con = D.build()
    t = D.AS_OF.replace(tzinfo=None)
    con.executemany("INSERT INTO control_results (as_of, change_id, repo, control_id, status, detail) VALUES (?, ?, ?, ?, ?, ?)", [
        (t, "acme/payments-api", "acme/payments-api", "CC8.1-14", "fail",
         "1 rewrite of main since 2026-08-27T00:00Z: force push by mallory at 2026-11-20T08:30Z (aaaaaaa -> bbbbbbb)"),
        (t, "acme/web-frontend", "acme/web-frontend", "CC8.1-15", "fail",
         "1 of 3 production deployments since 2026-08-27T00:00Z shipped code that is neither on main's "
         "first-parent history nor an approved pull request head: deployment 3003 of ccccccc by carol-dev")])
    text = _all_text(build_slack_message(con, D.settings(), D.AS_OF, REPORT))
    assert "• *CC8.1-14* Production history not rewritten: 1" in text
    assert "• *CC8.1-15* Production deployments ship reviewed branch code: 1" in text
    assert "force push by mallory at 2026-11-20T08:30Z (aaaaaaa -&gt; bbbbbbb)" in text
# --- the exceptions register (r2): excepted failures are not alerted; invalid entries named once ------


def test_an_excepted_failure_is_not_alerted_and_invalid_entries_are_named_in_one_line():
    con = D.build()
    D.set_exceptions(con)  # EX-1 applies to #12 CC8.1-03; EX-2 expired; EX-3 unknown approver
    msg = build_slack_message(con, D.settings(), D.AS_OF, REPORT)
    alerted = [(a["change_id"], a["control_id"]) for a in msg["ccwatch"]["alerted"]]
    assert ("acme/payments-api#12", "CC8.1-03") not in alerted and len(alerted) == 4
    assert msg["text"].startswith("ccwatch 2026-11-25: 4 new CC8.1 control failures")
    text = _all_text(msg)
    assert "5 failing result(s) today (1 covered by an exception), 4 not alerted before" in text
    assert "no APPROVED review by anyone but carol-dev" not in text, "the excepted row is not listed"
    lines = [t for t in _texts(msg) if "exception entries do not apply" in t]
    assert lines == ["2 exception entries do not apply: EX-2 expired, EX-3 unknown_approver (see exceptions.csv)"]
    assert msg["text"].endswith("; 2 exception entries do not apply")
    mark_alerted(con, D.AS_OF, msg)
    assert build_slack_message(con, D.settings(), D.AS_OF, REPORT) is None, \
        "a rerun: nothing new, and invalid entries alone send nothing"


def test_an_alerted_failure_that_becomes_excepted_is_said_once_then_realerted_when_the_exception_ends():
    con = D.build()
    s = D.settings()
    mark_alerted(con, D.AS_OF, build_slack_message(con, s, D.AS_OF, REPORT))  # #12 CC8.1-03 alerted
    # day 2: same failures, and now EX-1 covers #12 CC8.1-03
    D.set_results(con, DAY2, [(DAY2.replace(tzinfo=None), *r[1:]) for r in D.result_rows(D.AS_OF)])
    D.set_exceptions(con, DAY2, D.REGISTER.split("- id: EX-2")[0])
    msg = build_slack_message(con, s, DAY2, REPORT)
    assert msg["ccwatch"]["alerted"] == [] and msg["ccwatch"]["resolved"] == []
    assert msg["ccwatch"]["excepted"] == [{"change_id": "acme/payments-api#12", "control_id": "CC8.1-03",
                                          "exception": "EX-1"}]
    assert msg["text"] == "ccwatch 2026-11-26: 1 CC8.1 failure now covered by an exception"
    text = _all_text(msg)
    assert "*Now covered by an exception* (1)" in text
    assert ("*CC8.1-03* Independent peer review: still fail, excepted by EX-1 until 2027-02-21T00:00Z" in text)
    assert mark_alerted(con, DAY2, msg) == 1
    assert con.execute("SELECT state, detail FROM slack_alerts WHERE as_of = ?",
                       [DAY2.replace(tzinfo=None)]).fetchall() == [("excepted", "EX-1")]
    assert build_slack_message(con, s, DAY2, REPORT) is None, "said once"
    # day 3: the exception no longer applies and the row still fails: a new failure again
    D.set_results(con, DAY3, [(DAY3.replace(tzinfo=None), *r[1:]) for r in D.result_rows(D.AS_OF)])
    third = build_slack_message(con, s, DAY3, REPORT)
    assert [(a["change_id"], a["control_id"]) for a in third["ccwatch"]["alerted"]] == [
        ("acme/payments-api#12", "CC8.1-03")]


def test_an_excepted_failure_that_passes_later_is_not_reported_resolved():
    con = D.build()
    s = D.settings()
    D.set_exceptions(con)
    mark_alerted(con, D.AS_OF, build_slack_message(con, s, D.AS_OF, REPORT))
    D.set_results(con, DAY2, _day_rows(DAY2, {("acme/payments-api#13", "CC8.1-01"): "fail"}))
    assert build_slack_message(con, s, DAY2, REPORT) is None, "#12 CC8.1-03 was never alerted: nothing resolved"


def test_the_invalid_entries_line_stays_within_a_section():
    from ccwatch.publish.slack import invalid_exceptions_line

    assert invalid_exceptions_line([{"id": "EX-1", "status": "valid", "reason": None}]) is None
    one = invalid_exceptions_line([{"id": "EX-1", "status": "invalid", "reason": "expired"}])
    assert one == "1 exception entry does not apply: EX-1 expired (see exceptions.csv)"
    many = [{"id": f"EX-{'9' * 50}-{i}", "status": "invalid", "reason": "self_approved"} for i in range(300)]
    line = invalid_exceptions_line(many)
    assert len(line) <= MAX_SECTION and line.startswith("300 exception entries do not apply: EX-")
    shown = line.count("self_approved")
    assert re.search(r", … and (\d+) more \(see exceptions.csv\)$", line).group(1) == str(300 - shown)
