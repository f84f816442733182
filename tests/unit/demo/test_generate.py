"""The bundled demo org (include/demo, docs/DEMO.md) is reproducible, consistent and right.

Besides determinism and referential/time consistency, this file carries a small,
independent reference reading of CONTROLS.md over the compact scenario and checks that
every status in expected.json follows from the data (double entry: the generator
declares the planted outcomes, this oracle derives them).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from ccwatch.settings import load_settings

from tests.helpers.paths import ROOT

DEMO = ROOT / "include" / "demo"
CONFIG = ROOT / "include" / "config" / "ccwatch.yaml"
PASS, FAIL, PEND, NA = "pass", "fail", "pending", "not_applicable"
ALL4 = {PASS, FAIL, PEND, NA}
REACHABLE = {"CC8.1-01": {PASS, FAIL, NA}, "CC8.1-02": {PASS, FAIL, NA}, "CC8.1-03": {PASS, FAIL, NA},
             "CC8.1-04": {PASS, FAIL, NA}, "CC8.1-05": {PASS, FAIL, NA}, "CC8.1-06": ALL4, "CC8.1-07": ALL4,
             "CC8.1-08": ALL4, "CC8.1-09": ALL4, "CC8.1-10": {PASS, FAIL}, "CC8.1-11": {PASS, FAIL},
             "CC8.1-12": {PASS, FAIL}, "CC8.1-13": ALL4}


def ts(s: str | None) -> datetime | None:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ") if s else None


@pytest.fixture(scope="module")
def scenario():
    return json.loads((DEMO / "scenario.json").read_text())


@pytest.fixture(scope="module")
def expected():
    return json.loads((DEMO / "expected.json").read_text())


@pytest.fixture(scope="module")
def cfg():
    return load_settings(CONFIG)


def first_parent_chain(commits: list[dict]) -> list[str]:
    by_sha = {c["sha"]: c for c in commits}
    parents = {p for c in commits for p in c["parents"]}
    tips = [c["sha"] for c in commits if c["sha"] not in parents]
    assert len(tips) == 1, f"main must have exactly one tip, got {tips}"
    chain, cur = [], tips[0]
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
        want = ({"CC8.1-11", "CC8.1-12"} if k in scenario["github"]["repos"]
                else {f"CC8.1-{i:02d}" for i in (*range(1, 11), 13)})
        assert {c for c in row if c.startswith("CC")} == want, k
        assert row["why"] and "\n" not in row["why"]
    clean = sum(1 for k in changes if all(s in (PASS, NA) for c, s in expected["results"][k].items()
                                          if c.startswith("CC")))
    assert clean >= 20, "the demo should be mostly clean changes"


def test_scenario_matches_the_demo_config(scenario, cfg):
    assert scenario["meta"]["as_of"] == "2026-11-25T00:00:00Z"
    assert set(scenario["github"]["repos"]) == {r.repo for r in cfg.github.repositories}
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
        chain = set(first_parent_chain(repo["commits"]))
        for c in repo["commits"]:
            assert set(c["parents"]) <= shas and {c["author"], c["committer"]} <= set(gh["users"])
        for p in repo["pulls"]:
            assert {p["user"], p["merged_by"] or p["user"]} <= set(gh["users"])
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
        for d in repo["deployments"]:
            assert d["sha"] in chain and d["creator"] in gh["users"]
            assert d["environment"] in repo["environments"]
    for m in missing:
        assert m not in issues
    for issue in issues.values():
        assert issue["status"] in jira["statuses"] and issue["reporter"] in jira["users"]
        assert set(issue["fields"]) <= {f["name"] for f in jira["fields"]}
        for h in issue["changelog"]:
            assert h["author"] in jira["users"]


def test_timestamps_are_ordered(scenario):
    for _name, repo in scenario["github"]["repos"].items():
        when = {c["sha"]: ts(c["date"]) for c in repo["commits"]}
        for c in repo["commits"]:
            assert all(when[p] < when[c["sha"]] for p in c["parents"]), c["sha"]
        for p in repo["pulls"]:
            created, closed, merged = ts(p["created_at"]), ts(p["closed_at"]), ts(p["merged_at"])
            assert created < closed and (merged is None or merged == closed)
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
    """A deliberately plain reading of CONTROLS.md over the compact scenario (see docs/DEMO.md)."""

    def __init__(self, scenario: dict, cfg):
        self.s, self.cfg = scenario, cfg
        self.T = ts(scenario["meta"]["as_of"])
        self.ident: dict[str, str] = {}
        for i in cfg.people.identities:
            for x in (i.github, i.jira):
                if x:
                    self.ident[x] = i.name
        self.bots = {u for u, v in scenario["github"]["users"].items() if v["type"] == "Bot"}
        self.cats = scenario["jira"]["statuses"]

    def person(self, x):
        return self.ident.get(x, x)

    def among(self, x, group):
        return self.person(x) in {self.person(g) for g in group}

    def done(self, when):  # events after the as-of time have not happened
        return when is not None and when <= self.T

    def repo_results(self, name: str) -> dict:
        repo, rc = self.s["github"]["repos"][name], self.cfg.repo(name)
        chain = first_parent_chain(repo["commits"])
        pos = {s: i for i, s in enumerate(chain)}
        commits = {c["sha"]: c for c in repo["commits"]}
        deps = []
        for d in repo["deployments"]:
            sts = [(ts(x["created_at"]), x["state"]) for x in d["statuses"] if self.done(ts(x["created_at"]))]
            if self.done(ts(d["created_at"])):
                deps.append({**d, "at": ts(d["created_at"]), "sts": sts})
        out, start = {}, self.T - timedelta(days=self.cfg.lookback_days)
        merged_shas = set()
        for p in repo["pulls"]:
            m = ts(p["merged_at"])
            if m and p["base"] == rc.production_branch:
                merged_shas.add(p["merge_commit_sha"])
                if start < m <= self.T:
                    out[f"{name}#{p['number']}"] = self.pr(repo, rc, p, m, pos, deps)
        for sha in chain:
            at = ts(commits[sha]["date"])
            if sha not in merged_shas and start < at <= self.T:
                row = {f"CC8.1-{i:02d}": NA for i in (*range(1, 10), 13)}
                out[f"{name}@{sha}"] = {**row, "CC8.1-10": FAIL}
        return out

    def deployed(self, deps, envs, pos, sha, need_latest_success):
        cands = [d for d in deps if d["environment"] in envs and d["sha"] in pos and pos[d["sha"]] >= pos[sha]
                 and d["sts"] and (d["sts"][-1][1] == "success" if need_latest_success
                                   else any(s == "success" for _, s in d["sts"]))]
        return min(cands, key=lambda d: d["at"]) if cands else None

    def pr(self, repo, rc, p, m, pos, deps) -> dict:
        cfg, T, author = self.cfg, self.T, p["user"]
        r = {}
        keys = [k for k in re.findall(cfg.jira.ticket_key_pattern, p["title"])
                if k.split("-")[0] in cfg.jira.project_keys]
        ticket = self.s["jira"]["issues"].get(keys[0]) if keys else None
        r["CC8.1-01"] = PASS if ticket else FAIL
        f = cfg.jira.fields
        need = [f.business_justification, f.risk_assessment, f.testing_plan, *cfg.jira.required_fields]
        r["CC8.1-02"] = PASS if ticket and all((ticket["fields"].get(n) or "").strip() for n in need) else FAIL
        # 03
        revs = [x for x in repo["reviews"].get(str(p["number"]), []) if ts(x["submitted_at"]) < m]
        ok = [x for x in revs if x["state"] == "APPROVED" and x["user"] not in self.bots
              and self.person(x["user"]) != self.person(author) and x["commit_id"] == p["head_sha"]]
        latest = {}
        for x in sorted(revs, key=lambda x: x["submitted_at"]):
            if x["state"] in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[x["user"]] = x["state"]
        blocked = "CHANGES_REQUESTED" in latest.values()
        r["CC8.1-03"] = PASS if len(ok) >= cfg.review.min_approvals and not blocked else FAIL
        # deployment
        prod = self.deployed(deps, rc.production_environments, pos, p["merge_commit_sha"], True)
        D = prod["at"] if prod else None
        hist = [(ts(h["created"]), h["author"], it) for h in (ticket or {}).get("changelog", [])
                for it in h["items"] if self.done(ts(h["created"]))]
        approvals = [(at, who) for at, who, it in hist
                     if it["field"] == "status" and it["toString"] in cfg.jira.approval_statuses]
        # 04
        sod_bad = (not cfg.sod.allow_self_merge and self.person(p["merged_by"]) == self.person(author))
        if prod and not self.among(prod["creator"], cfg.github.deploy_automation):
            sod_bad |= self.person(prod["creator"]) == self.person(author)
        if approvals:
            sod_bad |= self.person(approvals[-1][1]) == self.person(author)
        r["CC8.1-04"] = FAIL if sod_bad else PASS
        # 05
        runs = repo["check_runs"].get(p["head_sha"], [])
        sts = repo["statuses"].get(p["head_sha"], [])
        checks = [(x["name"], ts(x["completed_at"]), x["conclusion"]) for x in runs] + \
                 [(x["context"], ts(x["created_at"]), x["state"]) for x in sts]
        names = list(rc.required_checks) or sorted({n for n, _, _ in checks})
        good = bool(checks)
        for n in names:
            before = sorted((at, c) for nn, at, c in checks if nn == n and at and at < m)
            good &= bool(before) and before[-1][1] in ("success", "neutral", "skipped")
            good &= not any(nn == n and (at is None or at >= m) for nn, at, _ in checks)
        r["CC8.1-05"] = PASS if good else FAIL
        # category
        labels = set(p["labels"]) | set((ticket or {}).get("labels", []))
        em = cfg.jira.emergency
        emergency = bool(labels & set(em.labels) | {"emergency"} & set(p["labels"])) or (
            ticket is not None and (ticket["issuetype"] in em.issue_types or ticket["priority"] in em.priorities))
        standard = bool(set((ticket or {}).get("labels", [])) & set(cfg.jira.standard_change.labels))
        grace = m + timedelta(hours=cfg.windows.deploy_grace_hours)
        # 06
        good_appr = [at for at, who in approvals if self.among(who, cfg.people.change_approvers)
                     and self.person(who) != self.person(author)]
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
        # 09
        if not emergency:
            r["CC8.1-09"] = NA
        else:
            retro_end = m + timedelta(days=cfg.windows.emergency_retro_days)
            retro = any(at <= retro_end and self.among(who, cfg.people.emergency_approvers) for at, who in approvals)
            pm = [at for at, who, it in hist if it["field"] == f.postmortem and (it["toString"] or "").strip()]
            pm_end = D + timedelta(days=cfg.windows.postmortem_days) if D else None
            retro_st = PASS if retro else (PEND if T < retro_end else FAIL)
            pm_st = (PEND if not D else PASS if any(at <= pm_end for at in pm) else PEND if T < pm_end else FAIL)
            r["CC8.1-09"] = FAIL if FAIL in (retro_st, pm_st) else PEND if PEND in (retro_st, pm_st) else PASS
        r["CC8.1-10"] = PASS
        # 13
        if not rc.staging_environments:
            r["CC8.1-13"] = NA
        elif not D:
            r["CC8.1-13"] = PEND
        else:
            st = [d for d in deps if d["environment"] in rc.staging_environments and pos.get(d["sha"], -1)
                  >= pos[p["merge_commit_sha"]] and any(s == "success" and at < D for at, s in d["sts"])]
            r["CC8.1-13"] = PASS if st else FAIL
        return r


def test_oracle_derives_every_expected_change_status(scenario, expected, cfg):
    oracle = Oracle(scenario, cfg)
    derived = {}
    for name in scenario["github"]["repos"]:
        derived.update(oracle.repo_results(name))
    want = {k: {c: s for c, s in v.items() if c.startswith("CC")} for k, v in expected["results"].items()
            if "#" in k or "@" in k}
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
    assert expected["results"]["acme/payments-api"] | {"why": ""} == {"CC8.1-11": PASS, "CC8.1-12": PASS, "why": ""}
    assert expected["results"]["acme/web-frontend"] | {"why": ""} == {"CC8.1-11": FAIL, "CC8.1-12": FAIL, "why": ""}
