"""change_facts / repo_facts: the population, the window, direct pushes and deployments."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from ccwatch.common.changes import title_ticket_key as ticket_key_of
from ccwatch.controls.facts import build_facts
from ccwatch.warehouse.facts import POPULATION_COLUMNS, build_base_facts

from tests.helpers.controls_world import AS_OF, PAY, WEB, T, World, make_settings, sha


def facts(w, settings=None, as_of=AS_OF):
    counts = build_facts(w.con, settings or make_settings(), as_of)
    cur = w.con.execute("SELECT * FROM change_facts ORDER BY change_id")
    cols = [d[0] for d in cur.description]
    return counts, {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_population_columns_present():
    w = World()
    w.good_pr(1)
    _, rows = facts(w)
    assert set(POPULATION_COLUMNS) <= set(rows[f"{PAY}#1"])
    r = rows[f"{PAY}#1"]
    assert (r["change_kind"], r["ticket_key"], r["category"], r["deployer"]) == ("pr", "PAY-1", "normal",
                                                                               "github-actions[bot]")
    assert r["deployed_at"] == T("11-10 12:05") and r["ticket_url"].endswith("/browse/PAY-1")


def test_window_edges_and_future_merges():
    w = World()
    w.pull(PAY, 1, "in [PAY-1]", merged_at=T("08-27 00:00"), head="h1", merge=sha("m1"))  # exactly 90 days
    w.pull(PAY, 2, "out [PAY-2]", merged_at=T("08-26 23:59"), head="h2", merge=sha("m2"))
    w.pull(PAY, 3, "future [PAY-3]", merged_at=T("11-25 00:01"), head="h3", merge=sha("m3"))
    w.pull(PAY, 4, "unmerged [PAY-4]", merged_at=None, head="h4", merge=None)
    w.pull(PAY, 5, "other base [PAY-5]", merged_at=T("11-10 00:00"), head="h5", merge=sha("m5"), base="develop")
    counts, rows = facts(w)
    assert sorted(rows) == [f"{PAY}#1"] and counts["pr_changes"] == 1 and counts["repositories"] == 2


def test_direct_pushes_exclude_pr_commits():
    w = World()
    c = w.good_pr(1)
    w.commit(PAY, sha("rebased"), T("11-10 09:59"), pr_numbers=[1])  # rebased commit of PR 1
    w.commit(PAY, sha("squash-no-pulls"), T("11-10 10:00"))  # unlinked but it is a merge commit
    w.con.execute("UPDATE pull_requests SET merge_commit_sha = ? WHERE number = 1", [sha("squash-no-pulls")])
    w.commit(PAY, sha("pushed"), T("11-11 10:00"), author="carol-dev", committer="carol-dev")
    w.commit(PAY, sha("old push"), T("08-01 10:00"))
    _, rows = facts(w)
    assert sorted(rows) == sorted([c["id"], f"{PAY}@{sha('pushed')}"])
    push = rows[f"{PAY}@{sha('pushed')}"]
    assert (push["change_kind"], push["merged_by"], push["sha"]) == ("direct_push", "carol-dev", sha("pushed"))


def test_deployment_batching_and_earliest_success():
    w = World()
    a = w.good_pr(1, day=10, deploy=False)
    b = w.good_pr(2, day=11, deploy=False)
    w.deployment(PAY, b["merge"], "production", "ops-dave", T("11-11 12:00"), [("success", T("11-11 12:10"))])
    w.deployment(PAY, a["merge"], "production", "ops-dave", T("11-12 12:00"), [("success", T("11-12 12:10"))])
    w.deployment(PAY, a["merge"], "production", "ops-dave", T("11-10 11:00"), [("failure", T("11-10 11:05"))])
    _, rows = facts(w)
    assert rows[a["id"]]["deployed_at"] == T("11-11 12:10")  # the later commit's deployment shipped it first
    assert rows[b["id"]]["deployed_at"] == T("11-11 12:10")
    # an earlier commit's deployment never counts for a later change
    w2 = World()
    a2 = w2.good_pr(1, day=10, deploy=False)
    b2 = w2.good_pr(2, day=11, deploy=False)
    w2.deployment(PAY, a2["merge"], "production", "ops-dave", T("11-12 12:00"), [("success", T("11-12 12:10"))])
    _, rows2 = facts(w2)
    assert rows2[b2["id"]]["deployed_at"] is None


def test_status_after_as_of_is_ignored():
    w = World()
    a = w.good_pr(1, day=24, deploy=False)
    w.deployment(PAY, a["merge"], "production", "ops-dave", T("11-24 23:00"),
                 [("in_progress", T("11-24 23:00")), ("success", T("11-25 00:30"))])
    _, rows = facts(w)
    assert rows[a["id"]]["deployed_at"] is None
    _, rows = facts(w, as_of=AS_OF + timedelta(hours=1))
    assert rows[a["id"]]["deployed_at"] == T("11-25 00:30")


def test_ticket_key_first_in_scope_key_of_title_only():
    p = re.compile(r"\b([A-Z][A-Z0-9]+-\d+)\b")
    assert ticket_key_of("SHA-256 pinning [PAY-7]", p, frozenset({"PAY"})) == ("PAY-7", "SHA-256")
    assert ticket_key_of("fix [FOO-1] and [WEB-2] [PAY-3]", p, frozenset({"PAY", "WEB"})) == ("WEB-2", "FOO-1")
    assert ticket_key_of(None, p, frozenset({"PAY"})) == (None, "")


def test_categories():
    w = World()
    e = w.good_pr(1, labels=["Emergency"])
    s = w.good_pr(2, ticket_kw={"labels": ["standard-change"]})
    p = w.good_pr(3, ticket_kw={"issue_type": "Emergency Change", "labels": ["standard-change"]})
    _, rows = facts(w)
    assert [rows[x["id"]]["category"] for x in (e, s, p)] == ["emergency", "standard", "emergency"]
    assert rows[p["id"]]["emergency_reason"] == "issue type Emergency Change"


def test_repo_facts_one_row_per_configured_repo():
    w = World()
    facts(w)
    assert w.con.execute("SELECT change_id FROM repo_facts ORDER BY 1").fetchall() == [(PAY,), (WEB,)]


# --- (r2) every ticket fact as of the as-of time, from the current issue and its changelog ---------

def _status(name, sid, cat):
    return {"self": f"https://acme.atlassian.net/rest/api/2/status/{sid}", "name": name, "id": sid,
            "statusCategory": {"id": {"new": 2, "indeterminate": 4, "done": 3}[cat], "key": cat}}


STATUSES = [_status("To Do", "1", "new"), _status("In Review", "3", "indeterminate"),
            _status("Approved", "10005", "indeterminate"), _status("Done", "10002", "done")]


def _issue_now(api):
    """PAY-1 as Jira answers after the as-of time: Done, an emergency, every field filled."""
    text = (lambda s: {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": s}]}]}) if api == "3" else (lambda s: s)
    return {"id": "10001", "key": "PAY-1", "self": f"https://acme.atlassian.net/rest/api/{api}/issue/10001",
            "fields": {"summary": "Change 1", "project": {"key": "PAY"}, "status": _status("Done", "10002", "done"),
                       "issuetype": {"id": "10100", "name": "Emergency Change"},
                       "priority": {"id": "1", "name": "Highest"}, "labels": ["emergency"],
                       "reporter": None, "created": "2026-10-30T09:00:00.000+0000",
                       "updated": "2026-11-26T09:00:00.000+0000",
                       "customfield_10010": text("Customers asked for it"), "customfield_10011": "High",
                       "customfield_10012": text("Unit tests"), "customfield_10013": text("Root cause"),
                       "customfield_10014": text("Revert")}}


def _histories(server):
    """Oldest first: approved before the deployment (11-10 12:05); the risk assessment written after
    it under the field's old name; everything else after the as-of time (11-25 00:00)."""
    def item(field, fid, frm, to, frm_id=None, to_id=None):
        out = {"field": field, "fieldtype": "custom" if fid.startswith("customfield_") else "jira", "from": frm_id,
               "fromString": frm, "to": to_id, "toString": to}
        if not server:
            out["fieldId"] = fid
        return out

    who = {"name": "alice"} if server else {"accountId": "557058:alice", "emailAddress": "alice@acme.example"}
    return [
        {"id": "10001", "author": who, "created": "2026-11-09T09:00:00.000+0000",
         "items": [item("status", "status", "In Review", "Approved", "3", "10005")]},
        {"id": "10002", "author": who, "created": "2026-11-11T09:00:00.000+0000",
         "items": [item("Risk Assessment" if server else "Risk", "customfield_10011", None, "High")]},
        {"id": "10003", "author": who, "created": "2026-11-26T09:00:00.000+0000",
         "items": [item("status", "status", "Approved", "Done", "10005", "10002"),
                   item("labels", "labels", "", "emergency"),
                   item("priority", "priority", "Medium", "Highest", "3", "1"),
                   item("issuetype", "issuetype", "Story", "Emergency Change", "10001", "10100"),
                   item("Post-Mortem", "customfield_10013", None, "Root cause")]},
    ]


@pytest.mark.parametrize("server", [False, True], ids=["cloud-v3", "server-v2"])
def test_ticket_facts_as_of_from_jira_payloads(server):
    from ccwatch.warehouse.store import load_records

    from tests.helpers.payloads import FIELDS, rec

    w = World()
    c = w.good_pr(1, ticket_kw=False, approve=False, done=False)  # merged 11-10 10:00, deployed 11-10 12:05
    s = make_settings()
    load_records(w.con, [rec("jira", "fields", "fields", FIELDS), rec("jira", "statuses", "statuses", STATUSES),
                         rec("jira", "issue", "PAY-1", _issue_now("2" if server else "3")),
                         rec("jira", "changelog", "PAY-1", _histories(server))], s)
    _, rows = facts(w, s)
    r = rows[c["id"]]
    assert (r["ticket_status"], r["ticket_status_category"], r["ticket_labels"], r["ticket_priority"],
            r["ticket_issue_type"], r["category"], r["emergency_reason"]) == (
        "Approved", "indeterminate", "", "Medium", "Story", "normal", None)
    # CC8.1-02 judges the fields at the production deployment: the risk assessment came later
    assert (r["ticket_business_justification"], r["ticket_risk_assessment"], r["ticket_field_rollback_plan"]) == (
        "Customers asked for it", None, "Revert")
    assert r["fields_filled_later"] == "Risk Assessment at 2026-11-11T09:00Z"
    # an hour after the last change the issue is as it is now
    _, later = facts(w, s, as_of=AS_OF + timedelta(days=1, hours=10))
    r = later[c["id"]]
    assert (r["ticket_status"], r["ticket_status_category"], r["ticket_labels"], r["ticket_priority"],
            r["ticket_issue_type"], r["category"]) == ("Done", "done", "emergency", "Highest", "Emergency Change",
                                                       "emergency")


def test_field_history_segments():
    """The value of a field over time: the ``from`` of the earliest later item, else the current value;
    nothing before the ticket existed; the time each non-blank run began."""
    w = World()
    c = w.good_pr(1, ticket_kw={"postmortem": "v3"})
    for at, frm, to in (("11-12 09:00", None, "v1"), ("11-13 09:00", "v1", ""), ("11-14 09:00", "", "v2"),
                        ("11-15 09:00", "v2", "v3")):
        w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T(at), to, from_string=frm)
    build_base_facts(w.con, make_settings(), AS_OF)  # the work table build_facts drops once it is done
    got = w.con.execute("SELECT seg_start, seg_end, value, run_start FROM _ticket_field_history "
                        "WHERE key = 'PAY-1' AND col = 'postmortem' ORDER BY seg_start").fetchall()
    inf = got[-1][1]
    assert got == [(T("10-01 09:00"), T("11-12 09:00"), None, None),
                   (T("11-12 09:00"), T("11-13 09:00"), "v1", T("11-12 09:00")),
                   (T("11-13 09:00"), T("11-14 09:00"), "", None),
                   (T("11-14 09:00"), T("11-15 09:00"), "v2", T("11-14 09:00")),
                   (T("11-15 09:00"), inf, "v3", T("11-14 09:00"))]


def test_a_configured_field_the_field_list_lacks_is_an_error_naming_the_config_key():
    from ccwatch.warehouse.normalize.base import NormalizeError

    from tests.helpers.payloads import FIELDS

    w = World()
    w.good_pr(1)
    w.jira_fields([f for f in FIELDS if f["name"] != "Post-Mortem"])
    with pytest.raises(NormalizeError, match=r"jira\.fields\.postmortem: no Jira field is named 'Post-Mortem'"):
        facts(w)
# --- r2: only a PR merged into the production branch covers a commit (issue #12, item 1) -------


def test_merge_commit_of_a_pr_into_another_branch_is_a_direct_push_on_main():
    """PR #7 merged into `release` as M; M later reaches main by a direct push: no PR into main covers it."""
    w = World()
    m = sha("release-merge")
    w.pull(PAY, 7, "FIX: backport [PAY-7]", merged_at=T("11-05 10:00"), head=sha("h7"), merge=m, base="release")
    w.commit(PAY, m, T("11-06 10:00"), committer="carol-dev")  # pushed to main, no PR into main
    _, rows = facts(w)
    assert f"{PAY}@{m}" in rows, "the release PR's merge commit must not hide a direct push to main"
    assert rows[f"{PAY}@{m}"]["change_kind"] == "direct_push"


# --- r2: a direct push is in the window when it was pushed (issue #12, item 1) ------------------
# main's first-parent line in each case: BASE (on main since August) <- P (the direct push) <- TIP.
# Log entries are shaped as GET /activity normalises them: (type, time, actor, before, after).

BASE, P, TIP = sha("base"), sha("p"), sha("tip")


def line(w, p_date="11-12 10:00", tip=True):
    w.commit(PAY, BASE, T("08-01 10:00"), committer="web-flow")
    w.commit(PAY, P, T(p_date), author="mallory", committer="mallory", parent=BASE)
    if tip:
        w.commit(PAY, TIP, T("11-20 10:00"), pr_numbers=[9], parent=P)


def log(w, *entries):
    w.activity_read(PAY)
    for kind, at, actor, before, after in entries:
        w.activity(PAY, kind, T(at), actor, before, after)


def _backdated(w):  # committer date months before the window, pushed inside it
    line(w, p_date="06-01 10:00")
    log(w, ("push", "08-01 10:00", "alice-lead", None, BASE), ("push", "11-12 10:00", "mallory", BASE, P),
        ("pr_merge", "11-20 10:00", "bob-rev", P, TIP))


def _recent_date_pushed_before(w):  # a recent committer date on a commit pushed before the window
    line(w, p_date="11-12 10:00")
    log(w, ("push", "08-01 10:00", "alice-lead", None, BASE), ("push", "08-10 10:00", "mallory", BASE, P),
        ("pr_merge", "11-20 10:00", "bob-rev", P, TIP))


def _pushed_with_later_commits(w):  # one push brought P and TIP: P's time is that push's
    line(w, p_date="06-01 10:00")
    w.con.execute("UPDATE commits SET pr_numbers = [] WHERE sha = ?", [TIP])
    log(w, ("push", "08-01 10:00", "alice-lead", None, BASE), ("push", "11-13 08:00", "mallory", BASE, TIP))


def _first_run_no_log(w):  # no activity log, the first load: the committer date, and the detail says so
    line(w, p_date="11-12 10:00")
    w.activity_read(PAY, 403)
    for s in (BASE, P, TIP):
        w.sighting(PAY, s, T("11-24 02:00"))


def _unreadable_first_sighting(w):  # no activity log: the earliest run that saw it, not its own date
    line(w, p_date="06-01 10:00")
    w.activity_read(PAY, 404)
    w.sighting(PAY, BASE, T("11-01 02:00"), T("11-24 02:00"))
    w.sighting(PAY, P, T("11-15 02:00"), T("11-24 02:00"))
    w.sighting(PAY, TIP, T("11-21 02:00"), T("11-24 02:00"))


def _unreadable_seen_before_window(w):  # seen by a run (not the first) before the window: out
    line(w, p_date="11-12 10:00")
    w.activity_read(PAY, 403)
    w.sighting(PAY, BASE, T("08-01 02:00"), T("11-24 02:00"))
    w.sighting(PAY, P, T("08-20 02:00"), T("11-24 02:00"))


def _on_branch_before_an_old_entry(w):  # the earliest entry over P already had P below its `before`
    line(w, p_date="11-12 10:00")
    log(w, ("pr_merge", "08-20 10:00", "bob-rev", P, TIP))  # the log's first entry: P was there before it


def _sighting_earlier_than_the_log(w):  # a run saw P before the log says it came (re-pushed): the sighting
    line(w, p_date="06-01 10:00")
    log(w, ("push", "08-01 10:00", "alice-lead", None, BASE), ("force_push", "11-18 10:00", "mallory", sha("x"), P),
        ("pr_merge", "11-20 10:00", "bob-rev", P, TIP))
    w.sighting(PAY, BASE, T("10-01 02:00"), T("11-24 02:00"))
    w.sighting(PAY, P, T("11-10 02:00"), T("11-24 02:00"))


def _deleted_actor(w):  # the log names no user: the pusher is unknown, never the committer
    line(w, p_date="06-01 10:00")
    log(w, ("push", "08-01 10:00", "alice-lead", None, BASE), ("push", "11-12 10:00", None, BASE, P))



def _on_branch_before_a_window_entry(w):  # the log's only entry over P (inside the window) already had P
    # below its `before`: it does not say when P came, and its actor did not push P
    line(w, p_date="06-01 10:00")
    log(w, ("pr_merge", "11-20 10:00", "bob-rev", P, TIP))

PUSH_CASES = [
    # (case, builder, in the population?, merged_at, merged_by, push_time_source fragment)
    ("backdated_pushed_in_window", _backdated, True, T("11-12 10:00"), "mallory", "activity log"),
    ("recent_date_pushed_before_window", _recent_date_pushed_before, False, None, None, None),
    ("one_push_of_several_commits", _pushed_with_later_commits, True, T("11-13 08:00"), "mallory", "activity log"),
    ("first_run_without_log_uses_committer_date", _first_run_no_log, True, T("11-12 10:00"), "mallory",
     "committer date: no activity log on the first run"),
    ("unreadable_log_first_sighting", _unreadable_first_sighting, True, T("11-15 02:00"), "mallory",
     "first seen by the run of 2026-11-15T02:00Z"),
    ("unreadable_log_seen_before_window", _unreadable_seen_before_window, False, None, None, None),
    ("on_branch_before_an_old_entry", _on_branch_before_an_old_entry, False, None, None, None),
    ("on_branch_before_a_window_entry", _on_branch_before_a_window_entry, False, None, None, None),
    ("sighting_earlier_than_log", _sighting_earlier_than_the_log, True, T("11-10 02:00"), "mallory",
     "first seen by the run of 2026-11-10T02:00Z"),
    ("log_without_actor", _deleted_actor, True, T("11-12 10:00"), None, "activity log"),
]


@pytest.mark.parametrize("name,build,inside,merged_at,merged_by,source", PUSH_CASES, ids=[c[0] for c in PUSH_CASES])
def test_direct_push_window_by_push_time(name, build, inside, merged_at, merged_by, source):
    w = World()
    build(w)
    _, rows = facts(w)
    cid = f"{PAY}@{P}"
    assert (cid in rows) == inside, sorted(rows)
    if inside:
        r = rows[cid]
        assert (r["change_kind"], r["merged_at"], r["merged_by"]) == ("direct_push", merged_at, merged_by)
        assert source in r["push_time_source"]


def test_a_push_after_the_as_of_time_has_not_happened():
    w = World()
    line(w, p_date="06-01 10:00", tip=False)
    log(w, ("push", "08-01 10:00", "alice-lead", None, BASE), ("push", "11-25 00:01", "mallory", BASE, P))
    _, rows = facts(w)
    assert f"{PAY}@{P}" not in rows


def test_a_commit_dated_after_the_as_of_time_has_not_happened():
    """Re-evaluating an earlier date: the branch now holds a commit made after that as-of time; with no
    activity log (first run) its committer date decides, and it is not yet pushed as of then."""
    w = World()
    line(w, p_date="11-25 08:00", tip=False)
    w.activity_read(PAY, 403)
    _, rows = facts(w)
    assert f"{PAY}@{P}" not in rows


def test_build_facts_leaves_only_the_config_tables():
    """The per-change work tables (one row per PR, change, ticket field segment, deployment, family)
    are dropped once change_facts and repo_facts are written: held in memory, they count against
    DuckDB's memory limit and make the rest of the build spill (1.9 GB of spilled temp tables at 1M
    changes under the pipeline's 2 GB).  The small config tables the facts SQL joins stay."""
    w = World()
    w.good_pr(1)
    w.commit(PAY, sha("pushed"), T("11-11 10:00"), author="carol-dev", committer="carol-dev")
    facts(w)
    left = {r[0] for r in w.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    assert left <= {"_params", "_repos", "_check_pins", "_envs", "_ident", "_roles", "_role", "_jfield"}, left
    assert w.con.execute("SELECT count(*) FROM change_facts").fetchone()[0] == 2
