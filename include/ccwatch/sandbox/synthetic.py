"""A synthetic org at scale for the benchmarks: ``generate_org`` -> a sandbox scenario.

    scenario = generate_org(repos=500, prs=100_000, months=12, seed=7)
    config_yaml = org_config(scenario)                 # synthetic_config.py: ccwatch.yaml, every repository
    day2 = add_next_day(scenario, changes=500)         # the next day's new merged PRs

The scenario is in the format of docs/ARCHITECTURE.md ("Sandbox scenario file"). The mix is
realistic and mostly compliant: PRs approved by a teammate on the final head, a few
self-merged, unreviewed or stale-approved, dependabot PRs without tickets, re-run checks,
a failing required check now and then, squash / merge-commit / rebase repositories,
production deployments batched over several merges (staging first where the repository
has a staging environment) by ``github-actions[bot]`` or an ops engineer, a few emergency
changes with retro approval and post-mortem, direct pushes, PRs closed without merging,
and Jira tickets (shared by some PRs) whose changelogs carry the approvals and closure.
Activity per repository is Zipf-like (a few busy repositories, a long tail).

Deterministic for a seed (no wall clock); nothing after ``as_of`` is in the scenario (a
deployment or approval that would come later has not happened yet). Fast and lean: ids and
shas from counters and the seeded RNG, times as epoch seconds until the end, shared
field dicts. ``meta.synthetic`` keeps what ``add_next_day`` needs (per-repository profile).
"""

from __future__ import annotations

import gc
import random
import time
from datetime import UTC, datetime

BOT, DEPENDABOT = "github-actions[bot]", "dependabot[bot]"
CHECKS = ("lint", "test", "build")
PROJECTS = ("PLAT", "PAY", "WEB", "DATA", "OPS", "MOB")
FIELD_NAMES = ("Business Justification", "Risk Assessment", "Testing Plan", "Post-Mortem", "Rollback Plan")
STATUSES = {"To Do": "new", "In Progress": "indeterminate", "In Review": "indeterminate",
            "Approved": "indeterminate", "Done": "done"}
H, D = 3600, 86400
DOMAIN = "synth.example"
PROTECTION = {
    "required_status_checks": {"strict": True, "contexts": ["test", "build"]},
    "enforce_admins": {"enabled": True},
    "required_pull_request_reviews": {"dismiss_stale_reviews": True, "require_code_owner_reviews": False,
                                      "required_approving_review_count": 1, "require_last_push_approval": False},
    "required_signatures": {"enabled": False}, "required_linear_history": {"enabled": False},
    "allow_force_pushes": {"enabled": False}, "allow_deletions": {"enabled": False},
    "block_creations": {"enabled": False}, "required_conversation_resolution": {"enabled": False},
    "lock_branch": {"enabled": False}, "allow_fork_syncing": {"enabled": False}}
_FIELDS_OK = {"Business Justification": "Customers asked for it; see the linked epic.",
              "Risk Assessment": "Low: behind a feature flag, covered by tests.",
              "Testing Plan": "Unit and integration tests in CI; manual check on staging.",
              "Rollback Plan": "Revert the merge commit and redeploy the previous release.", "Post-Mortem": None}
_FIELDS_BLANK = {**_FIELDS_OK, "Business Justification": "  "}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp())


def zipf_counts(total: int, n: int, s: float = 1.0, floor: bool = True) -> list[int]:
    """``total`` split over ``n`` buckets with weights 1/(i+1)^s (largest remainder; with ``floor``
    each bucket gets >= 1 when possible, else the tail may get 0)."""
    if n <= 0:
        return []
    weights = [1.0 / (i + 1) ** s for i in range(n)]
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    counts = [int(x) for x in raw]
    for i in sorted(range(n), key=lambda i: raw[i] - counts[i], reverse=True)[: total - sum(counts)]:
        counts[i] += 1
    for i in range(n - 1, -1, -1) if floor else ():  # move one PR to empty tail repositories from the busiest
        if counts[i] == 0 and counts[0] > 1:
            counts[i], counts[0] = 1, counts[0] - 1
    return counts


class _Gen:
    """Counters, the RNG and the people of one generation run."""

    def __init__(self, seed: int, as_of: int, meta: dict):
        self.rng = random.Random(seed)
        self.as_of = as_of
        # GitHub ids at realistic sizes, past 2**31 (issue #12); Jira changelog ids stay small
        self.ids = meta.setdefault("ids", {"review": 12_000_000_000, "check": 23_000_000_000,
                                           "status": 34_000_000_000, "deploy": 4_100_000_000,
                                           "dstatus": 45_000_000_000, "history": 60_000_000})
        self.tickets = meta.setdefault("tickets", {p: 0 for p in PROJECTS})
        self.specs: dict[str, list] = {}  # ticket key -> [[created, merged, prod, author, emergency, standard]]
        self.missing: set[str] = set()
        self.recent: dict[str, str] = {}  # repository -> its last ticket key  # keys PR titles name that are deliberately not in Jira

    def next(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def key(self, project: str) -> str:
        self.tickets[project] += 1
        return f"{project}-{self.tickets[project]}"


def people(n_devs: int) -> tuple[list[str], list[str], list[str]]:
    devs = [f"dev{i:04d}" for i in range(n_devs)]
    leads = devs[:: max(n_devs // 25, 2)]  # ~25 change approvers (every k-th developer)
    ops = [f"ops{i:02d}" for i in range(max(n_devs // 100, 2))]
    return devs, leads, ops


def email(login: str) -> str:
    return f"{login}@{DOMAIN}"


def generate_org(repos: int = 500, prs: int = 100_000, months: int = 12, seed: int = 7,
                 as_of: str = "2026-11-25T00:00:00Z", org: str = "synth") -> dict:
    """A scenario with ``prs`` merged PRs into ``main`` over ``months`` months across ``repos`` repositories."""
    enabled = gc.isenabled()
    gc.disable()  # millions of acyclic dicts: the cyclic GC's full passes would make this quadratic
    try:
        return _generate_org(repos, prs, months, seed, as_of, org)
    finally:
        gc.enable() if enabled else None


def _generate_org(repos: int, prs: int, months: int, seed: int, as_of: str, org: str) -> dict:
    end = _epoch(as_of)
    start = end - int(months * 30.44 * D)
    devs, leads, ops = people(max(20, min(repos * 3 // 2, 2000)))
    meta: dict = {"name": f"synthetic org {org}", "as_of": iso(end),
                  "generator": "ccwatch.sandbox.synthetic.generate_org",
                  "synthetic": {"seed": seed, "org": org, "repos": {}, "devs": len(devs), "months": months}}
    g = _Gen(seed, end, meta["synthetic"])
    rng = g.rng
    counts = zipf_counts(prs, repos)
    order = list(range(repos))
    rng.shuffle(order)  # the busiest repositories are not the first names
    gh_repos: dict[str, dict] = {}
    for rank, idx in enumerate(order):
        name = f"{org}/svc-{idx:03d}"
        prof = {"style": rng.choices(("squash", "merge", "rebase"), (6, 3, 1))[0],
                "staging": rng.random() < 0.4, "jenkins": rng.random() < 0.2,
                "project": PROJECTS[idx % len(PROJECTS)],
                "team": rng.sample(devs, min(len(devs), 3 + min(counts[rank] // 400, 12) + rng.randrange(4))),
                "protected": rng.random() < 0.8, "env_rules": rng.random() < 0.85}
        meta["synthetic"]["repos"][name] = prof
        root = {"sha": g.sha(), "parents": [], "author": prof["team"][0], "committer": prof["team"][0],
                "date": iso(start - 30 * D), "message": "Initial commit"}
        r = {"id": 700_000 + idx, "default_branch": "main", "private": True,
             "branches": {"main": {"protected": prof["protected"]}},
             "protection": {"main": PROTECTION} if prof["protected"] else {}, "rules": {"main": []}, "rulesets": {},
             "environments": _environments(prof), "commits": [root], "pulls": [], "reviews": {},
             "check_runs": {}, "statuses": {}, "deployments": []}
        times = sorted(rng.uniform(start, end - H) for _ in range(counts[rank]))
        _add_changes(g, name, r, prof, times, 1, leads, ops)
        gh_repos[name] = r
    return {"meta": meta,
            "github": {"users": _gh_users(devs, ops), "repos": gh_repos},
            "jira": {"deployment_type": "Cloud", "users": _jira_users(devs, ops),
                     "fields": [{"id": f"customfield_{10010 + i}", "name": n, "type": "textarea"}
                                for i, n in enumerate(FIELD_NAMES)],
                     "statuses": STATUSES, "projects": list(PROJECTS), "issues": _tickets(g, leads)},
            "slack": {"channels": {"compliance-alerts": "C0CCWATCH1"}}}


def _environments(prof: dict) -> dict:
    rules = [{"type": "required_reviewers", "prevent_self_review": True, "reviewers": ["ops00"]}] if prof["env_rules"] else []
    envs = {"production": {"protection_rules": rules, "deployment_branch_policy": None}}
    return envs | ({"staging": {"protection_rules": [], "deployment_branch_policy": None}} if prof["staging"] else {})


def _gh_users(devs: list[str], ops: list[str]) -> dict:
    users = {u: {"id": 2_200_000_000 + i, "type": "User"} for i, u in enumerate(devs + ops)}
    users[BOT] = {"id": 41898282, "type": "Bot"}
    users[DEPENDABOT] = {"id": 49699333, "type": "Bot"}
    return users


def _jira_users(devs: list[str], ops: list[str]) -> dict:
    out = {email(u): {"accountId": f"5b10{i:020x}", "displayName": u.upper()} for i, u in enumerate(devs + ops)}
    out[email("cto")] = {"accountId": "5b10cc0000000000000000ff", "displayName": "CTO"}
    return out


def _add_changes(g: _Gen, name: str, r: dict, prof: dict, times: list[float], number: int,
                 leads: list[str], ops: list[str], extra: bool = True) -> None:
    """Append merged PRs at ``times`` (sorted) to repository ``r`` with their commits, reviews,
    checks, deployments and ticket specs; plus (``extra``) closed-unmerged PRs and direct pushes."""
    rng, team = g.rng, prof["team"]
    commits, pulls, reviews, runs, statuses = r["commits"], r["pulls"], r["reviews"], r["check_runs"], r["statuses"]
    tip = commits[-1]["sha"]
    undeployed: list[list] = []  # specs of merged PRs no production deployment has shipped yet
    for m in times:
        m = int(m)
        if extra and rng.random() < 0.002:  # a direct push to main
            s = g.sha()
            who = rng.choice(team)
            commits.append({"sha": s, "parents": [tip], "author": who, "committer": who, "date": iso(m - 600),
                            "message": "hotfix config typo"})
            tip = s
        bot = rng.random() < 0.04
        author = DEPENDABOT if bot else rng.choice(team)
        others = [u for u in team if u != author] or [rng.choice(leads)]
        reviewer = rng.choice(others)
        emergency = not bot and rng.random() < 0.01
        standard = not bot and not emergency and rng.random() < 0.02
        created = m - rng.randint(2 * H, 72 * H)
        n_heads = 2 if rng.random() < 0.3 else 1
        head_times = [created - 600] + ([m - rng.randint(H, 2 * H)] if n_heads == 2 else [])
        heads = [g.sha() for _ in head_times]
        head = heads[-1]
        key = None
        if not bot and rng.random() < 0.97:
            recent = g.recent.get(name) if rng.random() < 0.15 else None  # a second PR for a ticket
            key = recent or g.key(prof["project"])
            g.recent[name] = key
            if rng.random() < 0.003:
                key = g.key(prof["project"])
                g.missing.add(key)  # the title names a ticket that does not exist
        kind = "HOTFIX" if emergency else ("CHORE" if bot or standard else rng.choice(("FEAT", "FIX")))
        title = f"{kind}: change {number} in {name.split('/')[1]}" + (f" [{key}]" if key else "")
        # reviews: approved on the final head by a teammate, with a realistic tail of exceptions
        roll = rng.random()
        rv = []
        if roll < 0.02:
            pass  # unreviewed
        elif roll < 0.03 and n_heads == 2:
            rv.append((reviewer, "APPROVED", heads[0], head_times[0] + H))  # stale approval
        else:
            if roll < 0.07 and n_heads == 2:
                rv.append((reviewer, "CHANGES_REQUESTED", heads[0], head_times[0] + H))
            rv.append((reviewer, "APPROVED", head, m - rng.randint(300, H)))
        reviews[str(number)] = [{"id": g.next("review"), "user": u, "state": st, "commit_id": c,
                                 "submitted_at": iso(at), "body": "LGTM" if st == "APPROVED" else "Please fix."}
                                for u, st, c, at in rv]
        merged_by = author if (roll < 0.02 or rng.random() < 0.05) else reviewer
        for i, (h, ht) in enumerate(zip(heads, head_times, strict=False)):
            final = i == len(heads) - 1
            crs = []
            for cname in CHECKS:
                done = ht + rng.randint(300, 1500)
                concl = "success"
                if final and cname == "test" and rng.random() < 0.05:  # failed, re-run green
                    crs.append(_run(g, cname, "failure", done))
                    done += 900
                if final and cname == "build" and rng.random() < 0.01:
                    concl = "failure"  # merged with a failing required check
                crs.append(_run(g, cname, concl, done))
            runs[h] = crs
            if prof["jenkins"]:
                statuses[h] = [{"id": g.next("status"), "context": "ci/jenkins", "state": "success",
                                "created_at": iso(ht + 1200), "creator": "jenkins-bot", "description": "Build passed"}]
        head_ref = f"{'dependabot/pip/lib' if bot else 'feature'}-{number}"
        if prof["style"] == "merge":
            for h, ht in zip(heads, head_times, strict=False):
                commits.append({"sha": h, "parents": [tip if h == heads[0] else heads[0]], "author": author,
                                "committer": author, "date": iso(ht), "message": title})
            mc = g.sha()
            commits.append({"sha": mc, "parents": [tip, head], "author": merged_by, "committer": "web-flow",
                            "date": iso(m), "message": f"Merge pull request #{number} from {head_ref}\n\n{title}"})
            shas = heads
        elif prof["style"] == "rebase":
            shas = heads + [g.sha() for _ in heads]
            for s in shas[len(heads):]:
                commits.append({"sha": s, "parents": [tip], "author": author, "committer": "web-flow",
                                "date": iso(m), "message": title})
                tip = s
            mc = shas[-1]
        else:
            mc = g.sha()
            commits.append({"sha": mc, "parents": [tip], "author": author, "committer": "web-flow",
                            "date": iso(m), "message": f"{title} (#{number})"})
            shas = heads
        tip = mc
        pulls.append({"number": number, "title": title, "user": author, "state": "closed",
                      "labels": ["emergency"] if emergency else (["dependencies"] if bot else []),
                      "base": "main", "head_ref": head_ref, "head_sha": head, "commit_shas": shas, "body": "",
                      "created_at": iso(created), "closed_at": iso(m), "merged_at": iso(m), "merged_by": merged_by,
                      "merge_commit_sha": mc})
        number += 1
        spec = [created, m, None, author, emergency, standard]
        undeployed.append(spec)
        if key:
            g.specs.setdefault(key, []).append(spec)
        if emergency or len(undeployed) >= 4 or rng.random() < 0.5:  # batch: deploy the tip
            prod = _deploy(g, r, prof, mc, m, ops)
            if prod is not None:
                for sp in undeployed:
                    sp[2] = prod
                undeployed = []
        if extra and rng.random() < 0.03:  # a PR closed without merging (in the list, not a change)
            pulls.append({"number": number, "title": f"WIP: experiment {number}", "user": author, "state": "closed",
                          "labels": [], "base": "main", "head_ref": f"wip-{number}", "head_sha": g.sha(),
                          "created_at": iso(created), "closed_at": iso(m + 60), "merged_at": None, "merged_by": None,
                          "merge_commit_sha": g.sha()})
            number += 1


def _run(g: _Gen, name: str, conclusion: str, done: int) -> dict:
    return {"id": g.next("check"), "name": name, "status": "completed", "conclusion": conclusion,
            "started_at": iso(done - 240), "completed_at": iso(done), "app": "github-actions"}


def _deploy(g: _Gen, r: dict, prof: dict, sha: str, merged: int, ops: list[str]) -> int | None:
    """Staging (if any) then production deployments of ``sha``; the production time if it happened by as_of."""
    rng = g.rng
    t = merged + rng.randint(300, 2400)
    creator = BOT if rng.random() < 0.97 else rng.choice(ops)
    plan = ([("staging", t, "success")] if prof["staging"] else [])
    prod_at = t + rng.randint(1800, 4 * H)
    if rng.random() < 0.02:
        plan.append(("production", prod_at, "failure"))
        prod_at += H
    plan.append(("production", prod_at, "success"))
    for env, at, final in plan:
        if at > g.as_of:
            return None
        done = at + rng.randint(120, 600)
        sts = [{"id": g.next("dstatus"), "state": "in_progress", "creator": creator, "created_at": iso(at + 30)}]
        if done <= g.as_of:
            sts.append({"id": g.next("dstatus"), "state": final, "creator": creator, "created_at": iso(done)})
        r["deployments"].append({"id": g.next("deploy"), "sha": sha, "ref": "main", "environment": env,
                                 "creator": creator, "created_at": iso(at), "statuses": sts})
    return prod_at


def _tickets(g: _Gen, leads: list[str]) -> dict:
    """Jira issues for the ticket specs collected while generating PRs (one per key)."""
    rng, out = g.rng, {}
    for key, specs in g.specs.items():
        if key in g.missing:
            continue
        created = min(s[0] for s in specs) - rng.randint(D, 10 * D)
        first_merge = min(s[1] for s in specs)
        prods = [s[2] for s in specs]
        author = specs[0][3]
        emergency, standard = any(s[4] for s in specs), all(s[5] for s in specs)
        dev = email(author)
        hist = [(created + H, dev, "status", "To Do", "In Progress")]
        status = "In Progress"
        if emergency:
            hist.append((first_merge + rng.randint(H, 2 * D), email("cto"), "status", status, "Approved"))
            status = "Approved"
            if prods[0] is not None:
                hist.append((prods[0] + rng.randint(D, 6 * D), dev, "Post-Mortem", None, "Root cause and timeline."))
        elif not standard:
            hist.append((first_merge - 8 * H, dev, "status", status, "In Review"))
            approver = rng.choice([x for x in leads if x != author] or leads)
            late = rng.random() < 0.02
            when = (first_merge + 3 * D) if late else first_merge - rng.randint(H, 6 * H)
            hist.append((when, email(approver), "status", "In Review", "Approved"))
            status = "Approved"
        if all(p is not None for p in prods) and rng.random() < 0.97:
            hist.append((max(prods) + rng.randint(H, 5 * D), dev, "status", status, "Done"))
        hist = sorted((h for h in hist if h[0] <= g.as_of), key=lambda h: h[0])
        cur, log, fields = "To Do", [], (_FIELDS_BLANK if rng.random() < 0.02 else _FIELDS_OK)  # shared, read-only
        for at, who, field, frm, to in hist:
            if field == "status":
                frm, cur = cur, to
            else:
                fields = {**fields, "Post-Mortem": to}
            log.append({"id": str(g.next("history")), "author": who, "created": iso(at),
                        "items": [{"field": field, "fromString": frm, "toString": to}]})
        labels = ["emergency"] if emergency else (["standard-change"] if standard else [])
        out[key] = {"project": key.split("-")[0], "summary": f"Change request {key}", "status": cur,
                    "issuetype": "Bug" if emergency else "Story", "priority": "Highest" if emergency else "Medium",
                    "labels": labels, "reporter": dev, "created": iso(created),
                    "updated": iso(max([created] + [h[0] for h in hist])),
                    "fields": fields, "changelog": log}
    g.specs.clear()
    g.missing.clear()
    return out


def add_next_day(scenario: dict, changes: int = 500, days: int = 1, seed: int | None = None) -> dict:
    """The scenario ``days`` later with ``changes`` new merged PRs (Zipf over the repositories,
    busiest first, merged in the new day). A new top-level dict: untouched repositories and
    tickets are shared with ``scenario``, touched repositories are shallow-copied (the input is
    not modified)."""
    meta = {**scenario["meta"], "synthetic": dict(scenario["meta"]["synthetic"])}
    syn = meta["synthetic"]
    syn["ids"], syn["tickets"] = dict(syn["ids"]), dict(syn["tickets"])
    old_end = _epoch(scenario["meta"]["as_of"])
    end = old_end + days * D
    meta["as_of"] = iso(end)
    g = _Gen(seed if seed is not None else syn["seed"] * 1_000_003 + end, end, syn)
    _, leads, ops = people(syn["devs"])
    repos = dict(scenario["github"]["repos"])
    by_size = sorted(repos, key=lambda n: (-len(repos[n]["pulls"]), n))
    for name, count in zip(by_size, zipf_counts(changes, len(by_size), floor=False), strict=False):
        if count == 0:
            continue
        old = repos[name]
        r = {**old, **{k: list(old[k]) for k in ("commits", "pulls", "deployments")},
             **{k: dict(old[k]) for k in ("reviews", "check_runs", "statuses")}}
        number = max((int(p["number"]) for p in r["pulls"]), default=0) + 1
        times = sorted(g.rng.uniform(old_end + 60, end - 60) for _ in range(count))
        _add_changes(g, name, r, syn["repos"][name], times, number, leads, ops, extra=False)
        repos[name] = r
    jira = {**scenario["jira"], "issues": {**scenario["jira"]["issues"], **_tickets(g, leads)}}
    return {**scenario, "meta": meta, "github": {**scenario["github"], "repos": repos}, "jira": jira}

