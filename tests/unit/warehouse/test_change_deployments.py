"""``change_deployments`` (SQL, warehouse/facts.py) lists what a brute-force reference lists.

The table says which deployments carry each change (its ``deployments.json`` evidence and the
controls share the definition).  The reference, in plain Python over the generated rows: per
change and configured environment, the deployments created at or before as_of that carry the
change (its sha, or a later first-parent commit when the change's commit has a position), in
creation order (created_at, id), up to and including the first that counts as successful.  (r2) A
deployment, production or staging, counts from its first ``success`` status at or before as_of:
later ``inactive``/``failure`` statuses do not undo it.  Statuses after as_of do not exist yet.

Random histories: two repositories (the same sha strings in both, placed differently), PRs merged
in the window on the first-parent line, PRs merged before the window, direct pushes, PRs whose
merge commit is off the line (matched by sha alone), deployments of the production, the staging
and an unconfigured environment at random positions, shas and times (ties included), with random
statuses (inactive and failure included, some after as_of).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from ccwatch.controls.facts import build_facts
from ccwatch.settings import RepoConfig

from tests.helpers.controls_world import AS_OF, World, make_settings

NOW = AS_OF.replace(tzinfo=None)
REPOS = {"acme/deploy-a": ("production", "staging"), "acme/deploy-b": ("production", "staging")}
KINDS = {"production": "production", "staging": "staging"}  # configured environment -> kind
STATES = ("queued", "in_progress", "success", "failure", "error", "inactive")


def settings():
    repos = tuple(RepoConfig(r, "main", (prod,), (stg,)) for r, (prod, stg) in REPOS.items())
    return make_settings(extra_repos=repos)


def at(rng: random.Random, lo_days: int = 40, hi_days: int = 2) -> object:
    """A time between ``lo_days`` before and ``hi_days`` after as_of, on a coarse grid (ties happen)."""
    return NOW + timedelta(hours=rng.randint(-24 * lo_days, 24 * hi_days) // 6 * 6)


def counts(kind: str, statuses: list[tuple]) -> bool:
    """(status_id, state, created_at) of one deployment: does it count as successful as of as_of?"""
    return any(s == "success" and c <= NOW for _, s, c in statuses)


def generate(w: World, rng: random.Random) -> tuple[dict, dict, dict]:
    """Fill the warehouse; return (change_id -> (repo, sha, position or None), the first-parent
    positions per repository, the deployments per (repository, environment))."""
    changes: dict[str, tuple] = {}
    lines: dict[str, dict[str, int]] = {}
    deps: dict[tuple[str, str], list[dict]] = defaultdict(list)
    n = 0
    for repo in REPOS:
        shas = [f"{i:040x}" for i in range(rng.randint(1, 30))]  # the same strings in both repositories
        rng.shuffle(shas)
        line = shas[: rng.randint(0, len(shas))]  # the first-parent line, oldest first
        lines[repo] = {s: p for p, s in enumerate(line)}
        for p, s in enumerate(line):
            kind = rng.choice(("pr", "pr", "old_pr", "push"))
            merged = NOW - timedelta(days=200 if kind == "old_pr" else rng.randint(1, 60), minutes=p)
            if kind == "push":
                w.ins("commits", repo=repo, branch="main", sha=s, position=p, committed_at=merged, pr_numbers=[])
                changes[f"{repo}@{s}"] = (repo, s, p)
                continue
            n += 1
            w.ins("commits", repo=repo, branch="main", sha=s, position=p, committed_at=merged, pr_numbers=[n])
            w.pull(repo, n, f"change {n}", merged_at=merged, merge=s)
            if kind == "pr":  # an old PR's commit is on the line, but no change of the window
                changes[f"{repo}#{n}"] = (repo, s, p)
        off = [s for s in shas if s not in lines[repo]]
        for s in off[: rng.randint(0, len(off))] + [None] * rng.randint(0, 1):  # merged off the line (or no sha)
            n += 1
            w.pull(repo, n, f"change {n}", merged_at=NOW - timedelta(days=rng.randint(1, 60)), merge=s)
            changes[f"{repo}#{n}"] = (repo, s, None)
        for env in (*REPOS[repo], "preview"):  # preview is no environment of the config
            for _ in range(rng.randint(0, 25)):
                dep = {"id": rng.randint(1, 10**9), "sha": rng.choice(shas + [None, "f" * 40]), "created": at(rng),
                       "statuses": []}
                for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
                    dep["statuses"].append((rng.randint(1, 10**9), rng.choice(STATES),
                                            dep["created"] + timedelta(hours=rng.choice((0, 0, 6, 12, 48)))))
                insert(w, repo, env, dep)
                deps[(repo, env)].append(dep)
    return changes, lines, deps


def insert(w: World, repo: str, env: str, dep: dict) -> None:
    w.ins("deployments", repo=repo, deployment_id=dep["id"], sha=dep["sha"], ref="main", environment=env,
          creator_login="ops-dave", creator_type="User", created_at=dep["created"])
    for sid, state, created in dep["statuses"]:
        w.ins("deployment_statuses", repo=repo, deployment_id=dep["id"], status_id=sid, state=state,
              creator_login="ops-dave", created_at=created)


def reference(changes: dict, lines: dict, deps: dict) -> dict[tuple[str, str], list[int]]:
    """(change_id, environment) -> the ids of the deployments that carry the change, brute force."""
    out = {}
    for cid, (repo, sha, pos) in changes.items():
        line = lines[repo]
        for env in REPOS[repo]:
            carried = []
            for d in sorted(deps.get((repo, env), []), key=lambda d: (d["created"], d["id"])):
                if d["created"] > NOW:
                    continue
                if pos is not None:
                    carries = d["sha"] in line and line[d["sha"]] >= pos
                else:
                    carries = sha is not None and d["sha"] == sha
                if carries:
                    carried.append(d["id"])
                    if counts(KINDS[env], d["statuses"]):
                        break
            if carried:
                out[(cid, env)] = carried
    return out


def table(w: World) -> dict[tuple[str, str], list[int]]:
    """change_deployments as (change_id, environment) -> deployment ids in its order."""
    rows = w.con.execute("SELECT change_id, environment, env_kind, deployment_id, ord FROM change_deployments "
                         "ORDER BY change_id, environment, ord").fetchall()
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for cid, env, kind, dep_id, _ord in rows:
        assert kind == KINDS[env], (cid, env, kind)
        out[(cid, env)].append(dep_id)
    return dict(out)


@pytest.mark.parametrize("seed", range(25))
def test_same_deployments_in_the_same_order_as_the_brute_force(seed):
    rng = random.Random(seed)
    w = World()
    changes, lines, deps = generate(w, rng)
    build_facts(w.con, settings(), AS_OF)
    window = {c for (c,) in w.con.execute("SELECT change_id FROM change_facts").fetchall()}
    assert window == set(changes), "the generator's changes are the window's changes"
    assert table(w) == reference(changes, lines, deps)


def test_a_success_later_marked_inactive_still_happened():
    """(r2) A success later marked inactive (superseded) still counts, in production as in staging."""
    w = World()
    repo, sha = "acme/deploy-a", "a" * 40
    w.ins("commits", repo=repo, branch="main", sha=sha, position=0, committed_at=NOW - timedelta(days=3),
          pr_numbers=[])
    day = NOW - timedelta(days=2)
    for env, first, second in (("production", 11, 12), ("staging", 21, 22)):
        insert(w, repo, env, {"id": first, "sha": sha, "created": day,
                              "statuses": [(first * 10, "success", day),
                                           (first * 10 + 1, "inactive", day + timedelta(hours=1))]})
        insert(w, repo, env, {"id": second, "sha": sha, "created": day + timedelta(hours=2),
                              "statuses": [(second * 10, "success", day + timedelta(hours=3))]})
    insert(w, repo, "production", {"id": 10, "sha": sha, "created": day - timedelta(hours=1),
                                   "statuses": [(100, "success", NOW + timedelta(hours=1))]})  # success after as_of
    insert(w, repo, "production", {"id": 13, "sha": sha, "created": NOW + timedelta(hours=1),
                                   "statuses": [(130, "success", NOW + timedelta(hours=2))]})  # created after as_of
    build_facts(w.con, settings(), AS_OF)
    assert table(w) == {(f"{repo}@{sha}", "production"): [10, 11], (f"{repo}@{sha}", "staging"): [21]}


def test_no_deployments_no_rows():
    w = World()
    w.ins("commits", repo="acme/deploy-a", branch="main", sha="a" * 40, position=0,
          committed_at=NOW - timedelta(days=3), pr_numbers=[])
    build_facts(w.con, settings(), AS_OF)
    assert w.con.execute("SELECT count(*) FROM change_facts").fetchone() == (1,)
    assert table(w) == {}
