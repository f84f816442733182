"""A small world builder for the control tests: API-shaped rows of the normalised tables.

Values follow the real payloads (GitHub review states, check-run status/conclusion pairs,
deployment status states, Jira statusCategory keys) as the normaliser stores them.  The
``good_pr`` change passes every control; tests break one clause at a time.

``Cases`` is the registry the table-driven tests of each control family share: each case builds
one change (a compliant ``good_pr`` with one clause broken) and states the expected status of one
control, plus a fragment its detail must contain; all cases of a module share one warehouse and
one evaluation (as of 2026-11-25T00:00Z, grace 72h, PIR 14d, emergency retro 3d, post-mortem 7d).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from ccwatch.settings import (
    EmergencyConfig,
    GithubConfig,
    Identity,
    JiraConfig,
    JiraFields,
    PeopleConfig,
    RepoConfig,
    ReviewConfig,
    Settings,
    SlackConfig,
    SodConfig,
    StandardChangeConfig,
    WindowsConfig,
)
from ccwatch.warehouse.connection import connect

from tests.helpers.payloads import FIELDS

AS_OF = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
PAY, WEB = "acme/payments-api", "acme/web-frontend"
#: Jira field name -> id, as ``GET /rest/api/2/field`` (tests.helpers.payloads.FIELDS) lists them
FIELD_IDS = {f["name"]: f["id"] for f in FIELDS}
#: GitHub App slug -> App id (REST check run ``app``; github-actions is App 15368 on github.com)
APP_IDS = {"github-actions": 15368, "circleci-checks": 18001, "buildkite": 31422}
_FIELD_ID = object()  # field_change's default: the field's id from FIELD_IDS (system fields: their name)


def T(s: str) -> datetime:
    """'11-10 10:00' -> naive UTC datetime in 2026 (the warehouse stores naive UTC)."""
    return datetime.strptime("2026-" + s, "%Y-%m-%d %H:%M")


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


def make_settings(extra_repos=(), **kw) -> Settings:
    review = kw.pop("review", ReviewConfig())
    sod = kw.pop("sod", SodConfig())
    windows = kw.pop("windows", WindowsConfig())
    return Settings(
        lookback_days=kw.pop("lookback_days", 90),
        github=GithubConfig(
            repositories=(
                RepoConfig(PAY, "main", ("production",), ("staging",), ("test", "build")),
                RepoConfig(WEB, "main", ("production",)),
                *extra_repos,
            ),
            deploy_automation=("github-actions[bot]",),
        ),
        jira=JiraConfig(
            project_keys=("PAY", "WEB", "OPS"),
            fields=JiraFields("Business Justification", "Risk Assessment", "Testing Plan", "Post-Mortem"),
            approval_statuses=("Approved",),
            required_fields=("Rollback Plan",),
            emergency=EmergencyConfig(labels=("emergency",), issue_types=("Emergency Change",), priorities=()),
            standard_change=StandardChangeConfig(labels=("standard-change",)),
        ),
        people=PeopleConfig(
            change_approvers=("alice@acme.example", "erin@acme.example"),
            authorized_deployers=("github-actions[bot]", "ops-dave"),
            emergency_approvers=("cto@acme.example",),
            identities=(
                Identity("Alice Approver", "alice-lead", "alice@acme.example"),
                Identity("Carol Dev", "carol-dev", "carol@acme.example"),
                Identity("Erin Manager", "erin-mgr", "erin@acme.example"),
                Identity("Dave Ops", "ops-dave", "dave@acme.example"),
                Identity("Chief Technology Officer", "cto-acme", "cto@acme.example"),
            ),
        ),
        slack=SlackConfig(channel="#compliance-alerts"),
        review=review, sod=sod, windows=windows,
    )


class World:
    def __init__(self):
        self.con = connect(":memory:")
        self.pos: dict[str, int] = {}
        self._ids = 1000
        self.pay, self.web = PAY, WEB  # the repos good_pr uses (a case world gives each case its own)
        self.repo_kw: dict[str, dict] = {}  # a case's RepoConfig overrides (Cases.evaluate)

    def nid(self) -> int:
        self._ids += 1
        return self._ids

    def ins(self, table: str, **row):
        cols = ", ".join(f'"{c}"' for c in row)
        self.con.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))

    # --- GitHub -------------------------------------------------------------------
    def commit(self, repo, sha_, at, pr_numbers=(), author="carol-dev", committer="web-flow", message="change",
               parent=None):
        p = self.pos.get(repo, -1) + 1
        self.pos[repo] = p
        self.ins("commits", repo=repo, branch="main", sha=sha_, position=p, parent_sha=parent,
                 author_login=author, committer_login=committer, committed_at=at, message=message,
                 pr_numbers=list(pr_numbers), html_url=f"https://github.com/{repo}/commit/{sha_}")

    def pull(self, repo, number, title, author="carol-dev", merged_at=None, merged_by="bob-rev", head=None,
             merge=None, labels=(), base="main", author_type="User"):
        self.ins("pull_requests", repo=repo, number=number, title=title, author_login=author, author_type=author_type,
                 labels=list(labels), base_branch=base, head_sha=head, merge_commit_sha=merge, merged_at=merged_at,
                 merged_by_login=merged_by, html_url=f"https://github.com/{repo}/pull/{number}")

    def queue_event(self, repo, number, enqueuer, at, actor="same", actor_type="User"):
        """(r2) An ``AddedToMergeQueueEvent`` of the PR (merge_queue_events, normalised)."""
        actor = enqueuer if actor == "same" else actor
        self.ins("merge_queue_events", repo=repo, pr_number=number, event_id=f"AMQE_{self.nid()}", at=at,
                 enqueuer_login=enqueuer, actor_login=actor, actor_type=None if actor is None else actor_type)

    def review(self, repo, number, login, state, commit_id, at, rtype="User"):
        self.ins("reviews", repo=repo, pr_number=number, review_id=self.nid(), reviewer_login=login,
                 reviewer_type=rtype, state=state, commit_id=commit_id, submitted_at=at)

    def check_run(self, repo, sha_, name, conclusion="success", started=None, completed=None, status="completed",
                  app="github-actions"):
        """A check run reported by GitHub App ``app`` (its slug; REST ``app {id, slug}``)."""
        self.ins("checks", repo=repo, sha=sha_, kind="check_run", check_id=self.nid(), name=name, status=status,
                 conclusion=conclusion, started_at=started, completed_at=completed,
                 app_id=APP_IDS.get(app) if app else None, app_slug=app)

    def commit_status(self, repo, sha_, context, state, at, creator="ci-bot[bot]"):
        """A commit status created by ``creator`` (REST ``creator.login``; an app posts as ``<slug>[bot]``)."""
        self.ins("checks", repo=repo, sha=sha_, kind="status", check_id=self.nid(), name=context, status=None,
                 conclusion=state, started_at=None, completed_at=at, creator_login=creator)

    def repo_config(self, repo, **kw):
        """Config of ``repo`` in a case world (``Cases``): e.g. ``required_checks``, ``required_check_apps``."""
        self.repo_kw[repo] = kw

    def deployment(self, repo, sha_, env, creator, created, statuses, creator_type=None):
        did = self.nid()
        ctype = creator_type or (None if creator is None else "Bot" if creator.endswith("[bot]") else "User")
        self.ins("deployments", repo=repo, deployment_id=did, sha=sha_, ref="main", environment=env,
                 creator_login=creator, creator_type=ctype, created_at=created)
        for state, at in statuses:
            self.ins("deployment_statuses", repo=repo, deployment_id=did, status_id=self.nid(), state=state,
                     creator_login=creator, created_at=at)
        return did

    def rule(self, repo, source, rule_type, ruleset_id=0, enforcement="active", bypass=None, parameters=None,
             detail=None, branch="main"):
        import json

        self.ins("branch_rules", repo=repo, branch=branch, source=source, ruleset_id=ruleset_id, rule_type=rule_type,
                 enforcement=enforcement, bypass_actors=bypass, parameters=json.dumps(parameters or {}),
                 detail=detail)

    def environment(self, repo, name, exists=True, reviewers=0, protected_branches=False, custom=False):
        self.ins("environments", repo=repo, name=name, env_exists=exists, required_reviewers=reviewers,
                 wait_timer=0, protected_branches=protected_branches, custom_branch_policies=custom)

    def activity(self, repo, kind, at, actor, before, after, branch="main", activity_id=None):
        """An entry of the branch's activity log (GET /activity, normalised: branch_activity)."""
        self.ins("branch_activity", repo=repo, branch=branch, activity_id=activity_id or self.nid(),
                 activity_type=kind, at=at, actor_login=actor, actor_type=None if actor is None else "User",
                 before_sha=before, after_sha=after)

    def activity_read(self, repo, status=200, detail=None, branch="main"):
        """Whether the load could read the branch's activity log (branch_activity_reads)."""
        self.ins("branch_activity_reads", repo=repo, branch=branch, status_code=status,
                 detail=detail if detail is not None or status == 200 else f"HTTP {status}: Resource not accessible "
                 "by integration")

    def sighting(self, repo, sha_, first, last=None, branch="main"):
        """A commit of the branch's chain as loads saw it (commit_sightings)."""
        self.ins("commit_sightings", repo=repo, branch=branch, sha=sha_, first_seen_as_of=first,
                 last_seen_as_of=last or first)

    # --- Jira ---------------------------------------------------------------------
    def ticket(self, key, issue_type="Story", status="Done", category="done", priority="Medium", labels=(),
               fields=None, created=None, postmortem=None, rollback="Revert the deploy"):
        f = {"business_justification": "Customers need it", "risk_assessment": "Low", "testing_plan": "Unit tests"}
        f.update(fields or {})
        import json

        self.ins("tickets", key=key, project=key.split("-")[0], ticket_exists=True, summary=f"summary {key}",
                 issue_type=issue_type, status=status, status_category=category, priority=priority,
                 labels=list(labels), reporter="carol@acme.example", created=created or T("10-01 09:00"),
                 updated=created or T("10-01 09:00"), postmortem=postmortem,
                 required_fields=json.dumps({"Rollback Plan": rollback}),
                 browse_url=f"https://acme.atlassian.net/browse/{key}", **f)

    def transition(self, key, author, at, to, category, frm="In Review"):
        self.ins("ticket_transitions", key=key, history_id=str(self.nid()), author=author, at=at, from_status=frm,
                 to_status=to, to_category=category)

    def field_change(self, key, field, author, at, to_string, field_id=_FIELD_ID, from_string=None):
        """A changelog item of ``field`` (its name as the item carries it). ``field_id``: the item's
        ``fieldId`` (Jira Cloud); ``None`` is a Server/Data Center item without one."""
        fid = FIELD_IDS.get(field, field) if field_id is _FIELD_ID else field_id
        self.ins("ticket_field_changes", key=key, history_id=str(self.nid()), field=field, field_id=fid,
                 author=author, at=at, from_string=from_string, to_string=to_string)
        # the issue as Jira returns it now carries the latest value (items are added oldest first)
        name = {v: k for k, v in FIELD_IDS.items()}.get(fid or "", field)
        column = {"Business Justification": "business_justification", "Risk Assessment": "risk_assessment",
                  "Testing Plan": "testing_plan", "Post-Mortem": "postmortem", "priority": "priority",
                  "issuetype": "issue_type"}.get(name)
        if column:
            self.con.execute(f"UPDATE tickets SET {column} = ? WHERE key = ?", [to_string, key])
        elif name == "labels":
            self.con.execute("UPDATE tickets SET labels = ? WHERE key = ?", [(to_string or "").split(), key])
        elif name == "Rollback Plan":
            self.con.execute("UPDATE tickets SET required_fields = json_object('Rollback Plan', ?) WHERE key = ?",
                             [to_string, key])

    def jira_fields(self, fields=None):
        """Store Jira's field list (``GET /rest/api/2/field``) as the ingest does: configured fields
        then resolve to their ids and names through it."""
        import json

        self.con.execute("INSERT OR REPLACE INTO raw_payloads VALUES ('jira', 'fields', 'fields', "
                         "'https://acme.atlassian.net/rest/api/2/field', TIMESTAMP '2026-11-25 00:00:01', NULL, 200, ?)",
                         [json.dumps(FIELDS if fields is None else fields)])

    # --- a compliant change -------------------------------------------------------
    def good_pr(self, n, repo=None, day=10, ticket=None, title=None, labels=(), deploy=True, staging=True,
                approve=True, done=True, checks=True, review=True, ticket_kw=None):
        """A PR merged 11-<day> 10:00 that passes every control; returns its facts handles."""
        repo = repo or self.pay
        key = ticket or f"PAY-{n}"
        head, merge = sha(f"{repo}{n}head"), sha(f"{repo}{n}merge")
        d = f"11-{day:02d}"
        merged = T(f"{d} 10:00")
        self.pull(repo, n, title or f"FEAT: change {n} [{key}]", merged_at=merged, head=head, merge=merge,
                  labels=labels)
        self.commit(repo, merge, merged, pr_numbers=[n], committer="web-flow")
        if review:
            self.review(repo, n, "bob-rev", "APPROVED", head, T(f"{d} 09:00"))
        if checks:
            for name in ("test", "build"):
                self.check_run(repo, head, name, "success", T(f"{d} 08:00"), T(f"{d} 08:10"))
        if ticket_kw is not False:
            self.ticket(key, **(ticket_kw or {}))
        if approve:
            self.transition(key, "alice@acme.example", T(f"{d} 08:30"), "Approved", "indeterminate")
        dep = None
        if deploy:
            if staging and repo == self.pay:
                self.deployment(repo, merge, "staging", "github-actions[bot]", T(f"{d} 11:00"),
                                [("in_progress", T(f"{d} 11:00")), ("success", T(f"{d} 11:05"))])
            dep = self.deployment(repo, merge, "production", "github-actions[bot]", T(f"{d} 12:00"),
                                  [("in_progress", T(f"{d} 12:00")), ("success", T(f"{d} 12:05"))])
        if done:
            self.transition(key, "carol@acme.example", T(f"{d} 15:00") + timedelta(days=1), "Done", "done",
                            frm="Approved")
        return {"id": f"{repo}#{n}", "head": head, "merge": merge, "merged": merged, "key": key, "dep": dep}

    def protected_repo(self, repo):
        for rt in ("non_fast_forward", "deletion", "required_status_checks"):
            self.rule(repo, "ruleset", rt, ruleset_id=7, bypass=0)
        self.rule(repo, "ruleset", "pull_request", ruleset_id=7, bypass=0,
                  parameters={"required_approving_review_count": 1, "dismiss_stale_reviews_on_push": True})
        self.rule(repo, "classic", "not_protected", detail="Branch not protected")
        self.environment(repo, "production", reviewers=1)

    def run(self, settings=None, as_of=AS_OF):
        from ccwatch.controls.evaluate import evaluate
        from ccwatch.controls.facts import build_facts

        s = settings or make_settings()
        build_facts(self.con, s, as_of)
        return evaluate(self.con, s, as_of)

    def results(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {(c, k): (st, d) for c, k, st, d in
                self.con.execute("SELECT change_id, control_id, status, detail FROM control_results").fetchall()}

    def status(self, change_id, control_id) -> str:
        return self.results()[(change_id, control_id)][0]



# --- builders the table-driven cases share ---------------------------------------------------
def merged_undeployed(w: World, n, day, hour="10:00", **kw):
    """A PR merged 11-<day> <hour>, reviewed and tested, not deployed, ticket approved but not done."""
    c = w.good_pr(n, day=day, deploy=False, done=False, **kw)
    if hour != "10:00":
        w.con.execute("UPDATE pull_requests SET merged_at = ? WHERE repo = ? AND number = ?",
                      [T(f"11-{day:02d} {hour}"), w.pay, n])
    return c


def emergency(w: World, n, day=10, approve_at="11-11 09:00", pm_at="11-12 09:00", **kw):
    """An emergency PR (label), approved by the CTO at ``approve_at``, post-mortem written at ``pm_at``."""
    c = w.good_pr(n, day=day, approve=False, labels=["emergency"], **kw)
    if approve_at:
        w.transition(c["key"], "cto@acme.example", T(approve_at), "Approved", "indeterminate")
    if pm_at:
        w.field_change(c["key"], "Post-Mortem", "carol@acme.example", T(pm_at), "root cause: config")
    return c


def mixed_changes(w: World) -> None:
    """Five changes of every kind: compliant, emergency on WEB, untested, undeployed, a direct push."""
    w.protected_repo(PAY)
    w.good_pr(1)
    w.good_pr(3, repo=WEB, ticket="WEB-3", labels=["emergency"], review=False)
    w.good_pr(4, title="no ticket", checks=False)
    w.good_pr(2, day=23, deploy=False, done=False, approve=False)  # last on main: nothing deploys it
    w.commit(PAY, sha("push"), T("11-12 10:00"), committer="carol-dev")


# --- the case registry --------------------------------------------------------------------
class Cases:
    """Table-driven cases of a control family: ``@case(control, status, fragment)`` registers a
    builder ``build(w, n) -> change_id``.  ``evaluate()`` builds every case in its own pair of
    repositories (one like PAY with staging, one like WEB) of one world and evaluates once."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, str, Callable]] = []  # (case id, control, status, fragment, builder)

    def __call__(self, control: str, status: str, fragment: str = ""):
        def deco(fn):
            self.items.append((fn.__name__, control, status, fragment, fn))
            return fn
        return deco

    def params(self) -> list[tuple[str, str, str, str]]:
        return [c[:4] for c in self.items]

    def ids(self) -> list[str]:
        return [c[0] for c in self.items]

    def covered(self) -> set[tuple[str, str]]:
        """(control, status) pairs some case expects."""
        return {(c[1], c[2]) for c in self.items}

    def evaluate(self):
        """(world, case id -> change id, results) of one evaluation of every case."""
        w = World()
        ids, repos = {}, []
        for i, (name, *_rest, build) in enumerate(self.items):
            w.pay, w.web = f"acme/pay-{i}", f"acme/web-{i}"
            ids[name] = build(w, 100 + i)
            pay_kw = {"required_checks": ("test", "build"), **w.repo_kw.get(w.pay, {})}
            repos += [RepoConfig(w.pay, "main", ("production",), ("staging",), **pay_kw),
                      RepoConfig(w.web, "main", ("production",), **w.repo_kw.get(w.web, {}))]
        w.run(make_settings(extra_repos=repos))
        return w, ids, w.results()

    def tests(self, reachable_pairs: set[tuple[str, str]]):
        """A family module's tests, bound at the end of the module (after every case):
        ``world, test_case, test_every_reachable_status_is_covered = case.tests(reachable(...))``:
        a module-scoped world (one evaluation of every case), one parametrised test per case, and the
        check that every reachable (control, status) pair has a case."""

        @pytest.fixture(scope="module")
        def world():
            return self.evaluate()

        @pytest.mark.parametrize("name,control,status,fragment", self.params(), ids=self.ids())
        def test_case(world, name, control, status, fragment):
            check_case(world, name, control, status, fragment)

        def test_every_reachable_status_is_covered():
            missing = set(reachable_pairs) - self.covered()
            assert not missing, missing

        return world, test_case, test_every_reachable_status_is_covered


def check_case(world, name: str, control: str, status: str, fragment: str) -> None:
    """The case's change got ``status`` for ``control`` and its detail contains ``fragment``."""
    _, ids, results = world
    got_status, detail = results[(ids[name], control)]
    assert (got_status, fragment in detail) == (status, True), detail


def reachable(controls: tuple[str, ...], statuses: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(c, s) for c in controls for s in statuses}
