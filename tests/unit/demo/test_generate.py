"""The bundled demo org (include/demo, docs/DEMO.md) is reproducible, consistent and right.

Besides determinism and referential/time consistency, this file carries a small,
independent reference reading of CONTROLS.md (revision 2) over the compact scenario and checks
that every status in expected.json follows from the data (double entry: the generator
declares the planted outcomes, this oracle derives them), and that the exceptions register's
entries come to the verdicts expected.json declares.  The oracle imports no ccwatch code: it
reads the config and the register as plain YAML.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import yaml

from tests.helpers.paths import ROOT

DEMO = ROOT / "include" / "demo"
CONFIG = ROOT / "include" / "config" / "ccwatch.yaml"
PASS, FAIL, PEND, NA = "pass", "fail", "pending", "not_applicable"
ALL4 = {PASS, FAIL, PEND, NA}
REACHABLE = {"CC8.1-01": {PASS, FAIL, NA}, "CC8.1-02": {PASS, FAIL, NA}, "CC8.1-03": {PASS, FAIL, NA},
             "CC8.1-04": {PASS, FAIL, NA}, "CC8.1-05": {PASS, FAIL, NA}, "CC8.1-06": ALL4, "CC8.1-07": ALL4,
             "CC8.1-08": ALL4, "CC8.1-09": ALL4, "CC8.1-10": {PASS, FAIL}, "CC8.1-11": {PASS, FAIL},
             "CC8.1-12": {PASS, FAIL}, "CC8.1-13": ALL4, "CC8.1-14": {PASS, FAIL}, "CC8.1-15": {PASS, FAIL}}
REPO_CONTROLS = {"CC8.1-11", "CC8.1-12", "CC8.1-14", "CC8.1-15"}
# (r2) every contract-revision-2 rule on integ has a planted case (docs/DEMO.md "Contract revision 2 cases")
R2_CASES = {"push-of-pr-commit-merged-elsewhere", "backdated-push", "postmortem-after-as-of", "renamed-field",
            "docs-after-deployment", "superseded-deployment", "null-deployment-creator", "deleted-jira-approver",
            "force-push", "history-intact", "off-branch-deployment", "branch-deployments",
            "user-status-for-pinned-check", "merge-queue-self-enqueued", "merge-queue-enqueued-by-other"}
# (r2) GitHub facts the oracle needs and the compact scenario does not spell: the id of the GitHub Actions App
# (what branch protection's `checks[].app_id` pins) and the merge queue's bot login (REST `merged_by`)
APP_IDS = {"github-actions": 15368}
QUEUE_BOT = "github-merge-queue[bot]"


def ts(s: str | None) -> datetime | None:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ") if s else None


class Cfg:
    """The config file as plain attributes (no ccwatch import): ``Cfg(d).a.b``; a missing key is None,
    except the list-valued keys the contract makes optional, which are empty."""

    LISTS = {"staging_environments", "required_checks", "required_fields", "labels", "issue_types", "priorities",
             "identities", "change_approvers", "emergency_approvers", "authorized_deployers", "deploy_automation"}

    def __init__(self, d: dict):
        self._d = d

    def __getattr__(self, k):
        v = self._d.get(k, [] if k in self.LISTS else None)
        if isinstance(v, dict):
            return Cfg(v)
        if isinstance(v, list):
            return [Cfg(x) if isinstance(x, dict) else x for x in v]
        return v

    def repository(self, name: str) -> Cfg:
        return next(r for r in self.github.repositories if r.repo == name)


def load_config(path) -> Cfg:
    return Cfg(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def scenario():
    return json.loads((DEMO / "scenario.json").read_text())


@pytest.fixture(scope="module")
def expected():
    return json.loads((DEMO / "expected.json").read_text())


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONFIG)


def first_parent_chain(repo: dict, branch: str = "main") -> list[str]:
    """The branch's first-parent line from its head (``branches.<b>.sha``), oldest first."""
    by_sha = {c["sha"]: c for c in repo["commits"]}
    chain, cur = [], repo["branches"][branch].get("sha") or repo["commits"][-1]["sha"]  # the double's default head
    while cur:
        chain.append(cur)
        ps = by_sha[cur]["parents"]
        cur = ps[0] if ps else None
    return chain[::-1]


# ----------------------------------------------------------------------------- generator
def test_generator_is_deterministic_and_committed_files_are_current(tmp_path):
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(DEMO / "generate.py"), "--out", str(tmp_path / run)],
                       check=True, capture_output=True)
    for name in ("scenario.json", "expected.json"):
        a, b = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert a == b, f"{name}: two runs differ"
        assert a == (DEMO / name).read_bytes(), f"{name}: committed file is stale; run include/demo/generate.py"


def test_generator_uses_no_clock_or_randomness():
    src = (DEMO / "generate.py").read_text()
    for banned in ("import random", "datetime.now", "utcnow", "time.time", "uuid"):
        assert banned not in src


# ----------------------------------------------------------------------------- coverage
def test_every_control_reaches_each_of_its_statuses(expected):
    seen: dict[str, set] = {}
    for row in expected["results"].values():
        for cid, st in row.items():
            if cid.startswith("CC8.1-"):
                seen.setdefault(cid, set()).add(st)
    assert seen == REACHABLE


def test_every_change_has_all_its_controls_and_a_why(expected, scenario):
    changes = [k for k in expected["results"] if "#" in k or "@" in k]
    assert 50 <= len(changes) <= 80
    for k, row in expected["results"].items():
        want = (REPO_CONTROLS if k in scenario["github"]["repos"]
                else {f"CC8.1-{i:02d}" for i in (*range(1, 11), 13)})
        assert {c for c in row if c.startswith("CC")} == want, k
        assert row["why"] and "\n" not in row["why"]
    clean = sum(1 for k in changes if all(s in (PASS, NA) for c, s in expected["results"][k].items()
                                          if c.startswith("CC")))
    assert clean >= 20, "the demo should be mostly clean changes"


def test_scenario_matches_the_demo_config(scenario, cfg):
    assert scenario["meta"]["as_of"] == "2026-11-25T00:00:00Z"
    assert set(scenario["github"]["repos"]) == {r.repo for r in cfg.github.repositories}
    assert cfg.exceptions == "include/config/exceptions.yaml"
    names = {f["name"] for f in scenario["jira"]["fields"]}
    f = cfg.jira.fields
    assert {f.business_justification, f.risk_assessment, f.testing_plan, f.postmortem,
            *cfg.jira.required_fields} <= names
    assert set(cfg.jira.approval_statuses) <= set(scenario["jira"]["statuses"])
    assert {i.github for i in cfg.people.identities if i.github} <= set(scenario["github"]["users"])
    assert {i.jira for i in cfg.people.identities if i.jira} <= set(scenario["jira"]["users"])


# ----------------------------------------------------------------------------- references
def test_references_exist_or_are_deliberately_missing(scenario, expected, cfg):
    gh, jira = scenario["github"], scenario["jira"]
    issues, missing = jira["issues"], set(expected["deliberately_missing_tickets"])
    for _name, repo in gh["repos"].items():
        shas = {c["sha"] for c in repo["commits"]}
        chain = set(first_parent_chain(repo))
        for c in repo["commits"]:
            assert set(c["parents"]) <= shas and {c["author"], c["committer"]} <= set(gh["users"])
        for p in repo["pulls"]:
            assert {p["user"], p["merged_by"] or p["user"], p.get("queued_by") or p["user"]} <= set(gh["users"])
            on_main = p["merged_at"] is not None and p["base"] == "main"
            assert (p["merge_commit_sha"] in chain) == on_main, p["number"]
            for key in re.findall(cfg.jira.ticket_key_pattern, p["title"]):
                if key.split("-")[0] in cfg.jira.project_keys:
                    assert (key in issues) != (key in missing), key
            for r in repo["reviews"].get(str(p["number"]), []):
                assert r["commit_id"] in p["commit_shas"] and r["user"] in gh["users"]
            assert p["head_sha"] == p["commit_shas"][-1]
        heads = {p["head_sha"] for p in repo["pulls"]} | {s for p in repo["pulls"] for s in p["commit_shas"]}
        assert set(repo["check_runs"]) | set(repo["statuses"]) <= heads
        for d in repo["deployments"]:  # (r2) off main only from another branch; null creator = deleted account
            assert d["sha"] in chain if d["ref"] == "main" else (d["sha"] in shas and d["sha"] not in chain)
            assert d["creator"] is None or d["creator"] in gh["users"]
            assert d["environment"] in repo["environments"]
        for e in activity(repo):
            assert {e["before"], e["after"]} - {None} <= shas and e["actor"] in gh["users"]
    for m in missing:
        assert m not in issues
    names = {f["name"] for f in jira["fields"]}
    for issue in issues.values():
        assert issue["status"] in jira["statuses"] and issue["reporter"] in jira["users"]
        assert set(issue["fields"]) <= {f["name"] for f in jira["fields"]}
        for h in issue["changelog"]:
            assert h["author"] is None or h["author"] in jira["users"]  # None: a deleted Jira account
            for it in h["items"]:  # a renamed field: the item keeps the old name and the field's id
                assert it["field"] in {"status", *names} or it["fieldId"] in {f["id"] for f in jira["fields"]}


def activity(repo: dict) -> list[dict]:
    """The repository's activity log of main: the scenario's, else the one the double derives from the
    first-parent history (docs/SANDBOX.md: a creation, a pr_merge per PR merged into main at merged_at
    (merge_queue_merge when the merge queue's bot merged it), a push per other commit at its date; never a
    force push)."""
    if "activity" in repo:
        return repo["activity"]
    chain, by_sha = first_parent_chain(repo), {c["sha"]: c for c in repo["commits"]}
    merges = {p["merge_commit_sha"]: p for p in repo["pulls"] if p["merged_at"] and p["base"] == "main"}
    out, before = [], None
    for i, sha in enumerate(chain):
        p = merges.get(sha)
        kind = ("branch_creation" if i == 0 else "push" if not p else
                "merge_queue_merge" if p["merged_by"] == QUEUE_BOT else "pr_merge")
        out.append({"activity_type": kind, "ref": "refs/heads/main", "before": before, "after": sha,
                    "timestamp": p["merged_at"] if p else by_sha[sha]["date"],
                    "actor": p["merged_by"] if p else by_sha[sha]["committer"]})
        before = sha
    return out


def pushed_at(repo: dict) -> dict[str, datetime]:
    """sha -> when it first reached the branch, from the activity log."""
    out: dict[str, datetime] = {}
    for e in sorted(activity(repo), key=lambda e: e["timestamp"]):
        out.setdefault(e["after"], ts(e["timestamp"]))
    return out


def test_activity_log_replays_to_the_branch_head(scenario, expected):
    """(r2) Each repository's activity log is consistent with its history: replayed in time order every
    entry starts from the tip the previous one left, the last leaves the branch head, every first-parent
    commit arrives by an entry, and a force push is the only entry whose `after` is not ahead of `before`."""
    backdated = expected["r2_cases"]["backdated-push"]["change_id"].split("@")[1]
    for name, repo in scenario["github"]["repos"].items():
        by_sha = {c["sha"]: c for c in repo["commits"]}
        tip, rewrites = None, []
        for e in sorted(activity(repo), key=lambda e: e["timestamp"]):
            assert e["before"] == tip and e["ref"] == "refs/heads/main", (name, e)
            if e["activity_type"] == "force_push":
                rewrites.append(e)
            elif tip is not None:
                assert by_sha[e["after"]]["parents"][0] == tip, (name, e)
            tip = e["after"]
        assert tip == first_parent_chain(repo)[-1]
        assert set(first_parent_chain(repo)) <= set(pushed_at(repo))
        assert len(rewrites) == (1 if name == "acme/web-frontend" else 0)
        # the only commit dated before its parent is the planted backdated push; the log dates it after
        when, pushed = {c["sha"]: ts(c["date"]) for c in repo["commits"]}, pushed_at(repo)
        odd = {c["sha"] for c in repo["commits"] if any(when[p] >= when[c["sha"]] for p in c["parents"])}
        assert odd == ({backdated} if name == "acme/web-frontend" else set())
        for sha in odd:
            assert all(pushed[p] < pushed[sha] for p in by_sha[sha]["parents"])


def test_timestamps_are_ordered(scenario):
    for _name, repo in scenario["github"]["repos"].items():
        when = {c["sha"]: ts(c["date"]) for c in repo["commits"]}
        pushed = pushed_at(repo)
        for c in repo["commits"]:  # (r2) a backdated commit is ordered by when it was pushed
            at = max(when[c["sha"]], pushed.get(c["sha"], when[c["sha"]]))
            assert all(when[p] < at for p in c["parents"]), c["sha"]
        for p in repo["pulls"]:
            created, closed, merged = ts(p["created_at"]), ts(p["closed_at"]), ts(p["merged_at"])
            assert created < closed and (merged is None or merged == closed)
            if p.get("queued_by"):  # (r2) added to the merge queue after opening, before the merge
                assert merged and created < ts(p["queued_at"]) < merged, p["number"]
            for r in repo["reviews"].get(str(p["number"]), []):
                assert ts(r["submitted_at"]) > created
            if p["head_sha"] in when:  # first commit before opening, last push before closing
                assert when[p["commit_shas"][0]] < created and when[p["head_sha"]] < closed
        for _sha, crs in repo["check_runs"].items():
            for cr in crs:
                assert ts(cr["started_at"]) < ts(cr["completed_at"])
        for d in repo["deployments"]:
            assert ts(d["created_at"]) > when[d["sha"]]
            times = [ts(s["created_at"]) for s in d["statuses"]]
            assert times == sorted(times) and times[0] > ts(d["created_at"])
        ids = [d["id"] for d in repo["deployments"]]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    cats = scenario["jira"]["statuses"]
    for key, issue in scenario["jira"]["issues"].items():
        times = [ts(h["created"]) for h in issue["changelog"]]
        assert times == sorted(times) and all(t > ts(issue["created"]) for t in times), key
        status = "To Do"
        for h in issue["changelog"]:
            for it in h["items"]:
                if it["field"] == "status":
                    assert it["fromString"] == status and it["toString"] in cats, key
                    status = it["toString"]
        assert issue["status"] == status, key
        assert ts(issue["updated"]) == max([ts(issue["created"]), *times])


# ----------------------------------------------------------------------------- reference oracle
class Oracle:
    """A deliberately plain reading of CONTROLS.md revision 2 over the compact scenario (see docs/DEMO.md)."""

    def __init__(self, scenario: dict, cfg):
        self.s, self.cfg = scenario, cfg
        self.T = ts(scenario["meta"]["as_of"])
        self.start = self.T - timedelta(days=cfg.lookback_days)
        self.ident: dict[str, str] = {}
        for i in cfg.people.identities:
            for x in (i.github, i.jira):
                if x:
                    self.ident[x] = i.name
        self.bots = {u for u, v in scenario["github"]["users"].items() if v["type"] == "Bot"}
        self.cats = scenario["jira"]["statuses"]
        self.field_id = {f["name"]: f["id"] for f in scenario["jira"]["fields"]}

    def person(self, x):
        return self.ident.get(x, x)

    def among(self, x, group):  # (r2) an unknown actor (None) is in no list
        return x is not None and self.person(x) in {self.person(g) for g in group}

    def other(self, x, y):  # (r2) an unknown actor cannot be shown to be someone other than y
        return x is not None and y is not None and self.person(x) != self.person(y)

    def done(self, when):  # events after the as-of time have not happened
        return when is not None and when <= self.T

    def deployments(self, repo) -> list[dict]:
        """(r2) Deployments created by the as-of time that reached success by then, at their first success:
        a later inactive / failure status does not undo them."""
        out = []
        for d in repo["deployments"]:
            ok = [ts(x["created_at"]) for x in d["statuses"] if x["state"] == "success"
                  and self.done(ts(x["created_at"]))]
            if self.done(ts(d["created_at"])) and ok:
                out.append({**d, "at": min(ok)})
        return out

    def repo_results(self, name: str) -> dict:
        repo, rc = self.s["github"]["repos"][name], self.cfg.repository(name)
        chain = first_parent_chain(repo, rc.production_branch)
        pos = {s: i for i, s in enumerate(chain)}
        deps = self.deployments(repo)
        out, start = {}, self.start
        covered = set()  # (r2) only a PR merged into the production branch covers a commit
        for p in repo["pulls"]:
            m = ts(p["merged_at"])
            if m and p["base"] == rc.production_branch:
                covered.add(p["merge_commit_sha"])
                if start < m <= self.T:
                    out[f"{name}#{p['number']}"] = self.pr(repo, rc, p, m, pos, deps)
        pushed = {}  # (r2) a direct push is in the window when it was pushed (the activity log), not by its dates
        for e in activity(repo):
            if e["activity_type"] in ("push", "force_push") and self.done(ts(e["timestamp"])):
                pushed[e["after"]] = min(pushed.get(e["after"], ts(e["timestamp"])), ts(e["timestamp"]))
        for sha in chain[1:]:
            if sha not in covered and sha in pushed and start < pushed[sha] <= self.T:
                row = {f"CC8.1-{i:02d}": NA for i in (*range(1, 10), 13)}
                out[f"{name}@{sha}"] = {**row, "CC8.1-10": FAIL}
        out[name] = self.repository(repo, rc, chain, deps)
        return out

    def repository(self, repo, rc, chain, deps) -> dict:
        """CC8.1-14/15 (11/12 are checked against the protection payload in their own test)."""
        log = [e for e in activity(repo) if e["ref"] == f"refs/heads/{rc.production_branch}"
               and self.start <= ts(e["timestamp"]) <= self.T]
        readable = repo.get("activity_status") is None
        rewritten = any(e["activity_type"] in ("force_push", "branch_deletion") for e in log)
        # (no disappeared-commit clause: that needs an earlier run's sightings, and the demo is one run)
        r = {"CC8.1-14": PASS if readable and not rewritten else FAIL}
        heads = {p["head_sha"]: p for p in repo["pulls"] if p["base"] == rc.production_branch}
        bad = 0
        for d in deps:
            if d["environment"] not in rc.production_environments or not self.start <= d["at"] <= self.T:
                continue
            p = heads.get(d["sha"])
            approved = p is not None and any(
                x["state"] == "APPROVED" and x["commit_id"] == d["sha"] and ts(x["submitted_at"]) < ts(d["created_at"])
                and x["user"] not in self.bots and self.other(x["user"], p["user"])
                for x in repo["reviews"].get(str(p["number"]), []))
            bad += d["sha"] not in chain and not approved
        r["CC8.1-15"] = PASS if not bad else FAIL
        return r

    def deployed(self, deps, envs, pos, sha):
        cands = [d for d in deps if d["environment"] in envs and d["sha"] in pos and pos[d["sha"]] >= pos[sha]]
        return min(cands, key=lambda d: d["at"]) if cands else None

    def items(self, ticket, name):
        """(r2) The ticket's changelog items of field ``name`` up to the as-of time, as (time, who, item):
        matched by the field's id (a renamed field's items keep the old name), or by name without one."""
        fid = self.field_id.get(name)
        return [(ts(h["created"]), h["author"], it) for h in (ticket or {}).get("changelog", [])
                for it in h["items"] if self.done(ts(h["created"]))
                and (it.get("fieldId") == fid if it.get("fieldId") and fid else it["field"] == name)]

    def value_at(self, ticket, name, when):
        """(r2) The field's value at ``when``: the current value with every later item undone."""
        fid = self.field_id.get(name)
        later = sorted((ts(h["created"]), it) for h in ticket["changelog"] for it in h["items"]
                       if ts(h["created"]) > when and (it.get("fieldId") == fid if it.get("fieldId") and fid
                                                       else it["field"] == name))
        return later[0][1]["fromString"] if later else ticket["fields"].get(name)

    def written_at(self, ticket, name):
        """(r2) When the field became non-blank as of the as-of time (creation when no item says otherwise);
        None while it is blank at the as-of time."""
        if not (self.value_at(ticket, name, self.T) or "").strip():
            return None
        filled = [at for at, _, it in self.items(ticket, name) if (it["toString"] or "").strip()]
        return min(filled) if filled else ts(ticket["created"])

    def pins(self, repo, rc) -> dict[str, set[str]]:
        """(r2) Required checks pinned to a GitHub App, name -> the apps' slugs: the production branch's
        classic protection (`required_status_checks.checks[].app_id`; null or -1 = any source) and the repo's
        `required_checks` entries `{name, app}`.  The demo has no rulesets (a ruleset's `integration_id` pins
        too): asserted, so a ruleset planted later makes this reading grow with it."""
        assert not repo["rulesets"], "the oracle reads no ruleset pins yet"
        slug = {i: s for s, i in APP_IDS.items()}
        out: dict[str, set[str]] = {}
        prot = (repo["protection"].get(rc.production_branch) or {}).get("required_status_checks") or {}
        for c in prot.get("checks", []):
            if c.get("app_id") not in (None, -1):
                out.setdefault(c["context"], set()).add(slug[c["app_id"]])
        for x in rc.required_checks:
            if isinstance(x, Cfg):
                out.setdefault(x.name, set()).add(x.app)
        return out

    def merger(self, repo, p, m, pos):
        """(r2) Who merged the PR: when a merge queue merged it (its bot is `merged_by`, or the activity log shows a
        `merge_queue_merge` that brought the merge commit onto the branch) whoever added it to the queue at or
        before the merge (None = unknown: nobody did, or the event names nobody); otherwise `merged_by`."""
        at = pos.get(p["merge_commit_sha"])
        in_log = at is not None and any(e["activity_type"] == "merge_queue_merge"
                                        and pos.get(e["before"], -1) < at <= pos.get(e["after"], -1)
                                        for e in activity(repo))
        if (p["merged_by"] or "").lower() != QUEUE_BOT and not in_log:
            return p["merged_by"]
        queued = ts(p.get("queued_at"))
        return p.get("queued_by") if queued and queued <= m else None

    def pr(self, repo, rc, p, m, pos, deps) -> dict:
        cfg, T, author = self.cfg, self.T, p["user"]
        r = {}
        keys = [k for k in re.findall(cfg.jira.ticket_key_pattern, p["title"])
                if k.split("-")[0] in cfg.jira.project_keys]
        ticket = self.s["jira"]["issues"].get(keys[0]) if keys else None
        r["CC8.1-01"] = PASS if ticket else FAIL
        f = cfg.jira.fields
        # 03
        revs = [x for x in repo["reviews"].get(str(p["number"]), []) if ts(x["submitted_at"]) < m]
        ok = [x for x in revs if x["state"] == "APPROVED" and x["user"] not in self.bots
              and self.other(x["user"], author) and x["commit_id"] == p["head_sha"]]
        latest = {}
        for x in sorted(revs, key=lambda x: x["submitted_at"]):
            if x["state"] in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[x["user"]] = x["state"]
        blocked = "CHANGES_REQUESTED" in latest.values()
        r["CC8.1-03"] = PASS if len(ok) >= cfg.review.min_approvals and not blocked else FAIL
        # deployment
        prod = self.deployed(deps, rc.production_environments, pos, p["merge_commit_sha"])
        D = prod["at"] if prod else None
        hist = [(ts(h["created"]), h["author"], it) for h in (ticket or {}).get("changelog", [])
                for it in h["items"] if self.done(ts(h["created"]))]
        approvals = [(at, who) for at, who, it in hist
                     if it["field"] == "status" and it["toString"] in cfg.jira.approval_statuses]
        # category
        labels = set(p["labels"]) | set((ticket or {}).get("labels", []))
        em = cfg.jira.emergency
        emergency = bool(labels & set(em.labels) | {"emergency"} & set(p["labels"])) or (
            ticket is not None and (ticket["issuetype"] in em.issue_types or ticket["priority"] in em.priorities))
        standard = bool(set((ticket or {}).get("labels", [])) & set(cfg.jira.standard_change.labels))
        # 02 (r2): every field non-blank at the production deployment (undeployed: the as-of time);
        # emergencies: by the end of the post-mortem window, pending while it is open
        need = [f.business_justification, f.risk_assessment, f.testing_plan, *cfg.jira.required_fields]
        if not ticket:
            r["CC8.1-02"] = FAIL
        else:
            window_end = D + timedelta(days=cfg.windows.postmortem_days) if D else None
            at = (T if not D or window_end > T else window_end) if emergency else (D or T)
            complete = all((self.value_at(ticket, n, at) or "").strip() for n in need)
            open_window = emergency and (not D or window_end > T)
            r["CC8.1-02"] = PASS if complete else PEND if open_window else FAIL
        # 04 (r2: an unknown deployer or final approver fails its clause; a merge queue's merger is its enqueuer)
        sod_bad = (not cfg.sod.allow_self_merge and not self.other(self.merger(repo, p, m, pos), author))
        if prod and not self.among(prod["creator"], cfg.github.deploy_automation):
            sod_bad |= not self.other(prod["creator"], author)
        if approvals:
            sod_bad |= not self.other(approvals[-1][1], author)
        r["CC8.1-04"] = FAIL if sod_bad else PASS
        # 05 (r2: a name pinned to an App counts only that app's check runs and its bot's commit statuses;
        # pinned names are judged even when required_checks leaves them out; two apps for one name: nothing counts)
        runs = repo["check_runs"].get(p["head_sha"], [])
        sts = repo["statuses"].get(p["head_sha"], [])
        checks = [(x["name"], ts(x["completed_at"]), x["conclusion"], x["app"]) for x in runs] + \
                 [(x["context"], ts(x["created_at"]), x["state"], f"status by {x['creator']}") for x in sts]
        pins = self.pins(repo, rc)

        def counted(name, source):
            apps = pins.get(name)
            return not apps or (len(apps) == 1 and source.lower() in {a.lower() for a in apps}
                                | {f"status by {a}[bot]".lower() for a in apps})

        names = {x if isinstance(x, str) else x.name for x in rc.required_checks} or {n for n, *_ in checks}
        good = bool(checks)
        for n in sorted(names | set(pins)):
            mine = [(at, c) for nn, at, c, src in checks if nn == n and counted(n, src)]
            before = sorted((at, c) for at, c in mine if at and at < m)
            good &= bool(before) and before[-1][1] in ("success", "neutral", "skipped")
            good &= not any(at is None or at >= m for at, _ in mine)
        r["CC8.1-05"] = PASS if good else FAIL
        grace = m + timedelta(hours=cfg.windows.deploy_grace_hours)
        # 06
        good_appr = [at for at, who in approvals if self.among(who, cfg.people.change_approvers)
                     and self.other(who, author)]
        if emergency or standard:
            r["CC8.1-06"] = NA
        elif D:
            r["CC8.1-06"] = PASS if any(at < D for at in good_appr) else FAIL
        else:
            r["CC8.1-06"] = PASS if good_appr else (PEND if T < grace else FAIL)
        # 07
        if D:
            r["CC8.1-07"] = PASS if self.among(prod["creator"], cfg.people.authorized_deployers) else FAIL
        else:
            r["CC8.1-07"] = PEND if T < grace else FAIL
        # 08
        dones = [at for at, who, it in hist if it["field"] == "status" and self.cats.get(it["toString"]) == "done"]
        pir_end = D + timedelta(days=cfg.windows.pir_days) if D else None
        if not ticket:
            r["CC8.1-08"] = FAIL
        elif not D:
            r["CC8.1-08"] = PEND
        elif any(D < at <= pir_end for at in dones):
            r["CC8.1-08"] = PASS
        elif any(at <= D for at in dones) or T >= pir_end:
            r["CC8.1-08"] = FAIL
        else:
            r["CC8.1-08"] = PEND
        # 09 (r2: the post-mortem as of the as-of time, its items matched by field id)
        if not emergency:
            r["CC8.1-09"] = NA
        else:
            retro_end = m + timedelta(days=cfg.windows.emergency_retro_days)
            retro = any(at <= retro_end and self.among(who, cfg.people.emergency_approvers) for at, who in approvals)
            pm = self.written_at(ticket, f.postmortem) if ticket else None
            pm_end = D + timedelta(days=cfg.windows.postmortem_days) if D else None
            retro_st = PASS if retro else (PEND if T < retro_end else FAIL)
            pm_st = (PEND if not D else PASS if pm and pm <= pm_end else PEND if T < pm_end else FAIL)
            r["CC8.1-09"] = FAIL if FAIL in (retro_st, pm_st) else PEND if PEND in (retro_st, pm_st) else PASS
        r["CC8.1-10"] = PASS
        # 13
        if not rc.staging_environments:
            r["CC8.1-13"] = NA
        elif not D:
            r["CC8.1-13"] = PEND
        else:
            st = [d for d in deps if d["environment"] in rc.staging_environments and pos.get(d["sha"], -1)
                  >= pos[p["merge_commit_sha"]] and d["at"] < D]
            r["CC8.1-13"] = PASS if st else FAIL
        return r


def test_oracle_derives_every_expected_change_status(scenario, expected, cfg):
    oracle = Oracle(scenario, cfg)
    derived = {}
    for name in scenario["github"]["repos"]:
        derived.update(oracle.repo_results(name))
    want = {k: {c: s for c, s in v.items() if c.startswith("CC") and c not in ("CC8.1-11", "CC8.1-12")}
            for k, v in expected["results"].items()}
    derived = {k: {c: s for c, s in v.items() if c not in ("CC8.1-11", "CC8.1-12")} for k, v in derived.items()}
    assert set(derived) == set(want), "population differs"
    diffs = {k: {c: (want[k][c], derived[k][c]) for c in want[k] if want[k][c] != derived[k][c]}
             for k in want}
    assert {k: v for k, v in diffs.items() if v} == {}


def test_excluded_pull_requests_are_not_changes(scenario, expected):
    ex = expected["excluded"]
    assert len(ex) == 4 and not set(ex) & set(expected["results"])
    pulls = {f"{n}#{p['number']}": p for n, r in scenario["github"]["repos"].items() for p in r["pulls"]}
    kinds = sorted(("unmerged" if pulls[k]["merged_at"] is None else
                    "other-base" if pulls[k]["base"] != "main" else
                    "before" if pulls[k]["merged_at"] < "2026-08-27" else "after") for k in ex)
    assert kinds == ["after", "before", "other-base", "unmerged"]


def test_repository_controls_follow_protection_and_environments(scenario, expected):
    pay, web = (scenario["github"]["repos"][r] for r in ("acme/payments-api", "acme/web-frontend"))
    prot = pay["protection"]["main"]
    assert prot["enforce_admins"]["enabled"] and prot["required_pull_request_reviews"]["dismiss_stale_reviews"]
    assert not prot["allow_force_pushes"]["enabled"] and not prot["allow_deletions"]["enabled"]
    assert "main" not in web["protection"] and not web["rules"]["main"] and not web["rulesets"]
    assert not web["environments"]["production"]["protection_rules"]
    assert web["environments"]["production"]["deployment_branch_policy"] is None
    pay_row, web_row = (expected["results"][r] for r in ("acme/payments-api", "acme/web-frontend"))
    assert (pay_row["CC8.1-11"], pay_row["CC8.1-12"]) == (PASS, PASS)
    assert (web_row["CC8.1-11"], web_row["CC8.1-12"]) == (FAIL, FAIL)


# ----------------------------------------------------------------------------- r2 cases and exceptions
def test_every_r2_rule_has_its_planted_case_with_its_statuses(expected):
    cases = expected["r2_cases"]
    assert set(cases) == R2_CASES
    for name, case in cases.items():
        row = expected["results"][case["change_id"]]
        assert case["statuses"] and all(row[c] == st for c, st in case["statuses"].items()), name
    # CC8.1-14/15 pass on one repository and fail on the other
    assert {cases[n]["change_id"] for n in ("force-push", "off-branch-deployment")} == {"acme/web-frontend"}
    assert {cases[n]["change_id"] for n in ("history-intact", "branch-deployments")} == {"acme/payments-api"}


def test_pin_and_merge_queue_cases_are_planted_as_issue_12_describes_them(scenario, expected):
    """(r2) Items 5 and 7 on payments-api, whose protection pins test and build to GitHub Actions: each case
    has the shape that the pre-r2 reading gets wrong (it would pass all three rows), so the oracle's
    verdict is decided by the r2 rule and nothing else."""
    pay = scenario["github"]["repos"]["acme/payments-api"]
    assert {c["context"]: c["app_id"] for c in pay["protection"]["main"]["required_status_checks"]["checks"]} == \
        {"test": APP_IDS["github-actions"], "build": APP_IDS["github-actions"]}
    pulls = {f"acme/payments-api#{p['number']}": p for p in pay["pulls"]}
    cases = expected["r2_cases"]
    # item 5: build failed in the app's run; the author then posted build=success as a commit status
    p = pulls[cases["user-status-for-pinned-check"]["change_id"]]
    m = ts(p["merged_at"])
    (run,) = [x for x in pay["check_runs"][p["head_sha"]] if x["name"] == "build"]
    (st,) = pay["statuses"][p["head_sha"]]
    assert (run["app"], run["conclusion"]) == ("github-actions", "failure")
    assert (st["context"], st["state"], st["creator"]) == ("build", "success", p["user"])
    assert ts(run["completed_at"]) < ts(st["created_at"]) < m  # pre-r2: the latest of the name, green
    # item 7: merged by the queue's bot, added to the queue before the merge by the author / by someone else
    for name, self_queued in (("merge-queue-self-enqueued", True), ("merge-queue-enqueued-by-other", False)):
        p = pulls[cases[name]["change_id"]]
        assert p["merged_by"] == QUEUE_BOT and ts(p["queued_at"]) < ts(p["merged_at"]), name
        assert (p["queued_by"] == p["user"]) == self_queued, name  # pre-r2: the bot is not the author
        assert cases[name]["statuses"] == {"CC8.1-04": FAIL if self_queued else PASS}, name


def test_demo_md_lists_every_r2_case_and_exception(expected):
    doc = (ROOT / "docs" / "DEMO.md").read_text(encoding="utf-8")
    section = doc.split("## Contract revision 2 cases", 1)[1].split("\n## ", 1)[0]
    for name, case in expected["r2_cases"].items():
        assert f"`{name}`" in section and f"`{case['change_id']}`" in section, name
    for ex in expected["exceptions"]:
        assert f"`{ex}`" in doc, ex


def judge_register(entries: list[dict], results: dict, scenario: dict, cfg, as_of: datetime) -> dict:
    """CONTROLS.md "Exceptions (r2)", read plainly: an entry applies when its approver is a change approver
    who is not the change's author (through people.identities), it expires at most a year after its
    approval, it is approved by and unexpired at the as-of time, and it names a row of the run; it marks
    that row when the row fails."""
    person = {x: i.name for i in cfg.people.identities for x in (i.github, i.jira) if x}
    approvers = {person.get(x, x) for x in cfg.people.change_approvers}
    authors = {f"{n}#{p['number']}": p["user"] for n, r in scenario["github"]["repos"].items() for p in r["pulls"]}
    out = {}
    for e in entries:
        target = e.get("change_id") or e["repo"]
        approved, expires = (datetime.combine(e[k], datetime.min.time()) for k in ("approved_at", "expires"))
        who = person.get(e["approved_by"], e["approved_by"])
        author = authors.get(target)
        reasons = [r for r, broken in (
            ("no_such_change", target not in results), ("unknown_approver", who not in approvers),
            ("self_approved", author is not None and who == person.get(author, author)),
            ("too_long", expires > approved.replace(year=approved.year + 1)),
            ("not_yet_approved", approved > as_of), ("expired", as_of >= expires)) if broken]
        out[e["id"]] = {"target": target, "control_id": e["control_id"],
                        "status": "invalid" if reasons else "valid", "reason": reasons[0] if reasons else None,
                        "applied": not reasons and results.get(target, {}).get(e["control_id"]) == FAIL}
    return out


def test_exceptions_register_entries_come_to_their_expected_verdicts(scenario, expected, cfg):
    entries = yaml.safe_load((ROOT / cfg.exceptions).read_text(encoding="utf-8"))
    got = judge_register(entries, expected["results"], scenario, cfg, ts(expected["as_of"]))
    want = {k: {x: v for x, v in e.items() if x != "why"} for k, e in expected["exceptions"].items()}
    assert got == want
    kinds = sorted((e["status"], e["reason"] or "") for e in got.values())
    assert kinds == [("invalid", "expired"), ("invalid", "self_approved"), ("valid", "")]
    assert [e["applied"] for e in got.values()].count(True) == 1
