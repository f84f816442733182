"""Generate the bundled demo org "acme" (see docs/DEMO.md).

    python include/demo/generate.py [--out DIR]

writes ``scenario.json`` (input of the sandbox API double, format in docs/ARCHITECTURE.md
"Sandbox scenario file") and ``expected.json`` (the status of every control for every
change and repository at the demo as-of time) next to this file, or into DIR.

Deterministic: no randomness, no wall clock; every sha is the sha1 of a label, every id
comes from a counter, and the output is byte-identical on every run.  Each change below
declares the statuses it is planted to produce (``exp``); everything not declared is
``pass`` (or ``not_applicable`` where CONTROLS.md says so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
HERE = Path(__file__).resolve().parent
PAY, WEB = "acme/payments-api", "acme/web-frontend"
BOT = "github-actions[bot]"
QUEUE = "github-merge-queue[bot]"  # (r2) GitHub's REST merged_by of a PR its merge queue merged
H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)
CONTROLS = ["CC8.1-01", "CC8.1-02", "CC8.1-03", "CC8.1-04", "CC8.1-05", "CC8.1-06",
            "CC8.1-07", "CC8.1-08", "CC8.1-09", "CC8.1-10", "CC8.1-13"]
REPO_CONTROLS = ["CC8.1-11", "CC8.1-12", "CC8.1-14", "CC8.1-15"]
DELETED = "(deleted)"  # a Jira account deleted since: its changelog histories come without an author (r2 "People")

GH_USERS = {  # login -> (id, type); web-flow and github-actions[bot] have their real ids
    "alice-lead": (2_200_001_001, "User"), "bob-rev": (2_200_001_002, "User"), "carol-dev": (2_200_001_003, "User"),
    "carol-acme": (2_200_001_013, "User"), "ops-dave": (2_200_001_004, "User"), "erin-mgr": (2_200_001_005, "User"),
    "frank-dev": (2_200_001_006, "User"), "grace-dev": (2_200_001_007, "User"), "cto-acme": (2_200_001_008, "User"),
    "web-flow": (19864447, "User"), BOT: (41898282, "Bot"), "acme-review-bot[bot]": (2_243_000_001, "Bot"),
    QUEUE: (118344674, "Bot"),
}
JIRA_PEOPLE = {  # email -> display name
    "alice@acme.example": "Alice Approver", "bob@acme.example": "Bob Reviewer",
    "carol@acme.example": "Carol Dev", "dave@acme.example": "Dave Ops", "erin@acme.example": "Erin Manager",
    "frank@acme.example": "Frank Dev", "grace@acme.example": "Grace Dev",
    "cto@acme.example": "Chief Technology Officer", "ccwatch@acme.example": "ccwatch service",
}
JIRA_OF = {"alice-lead": "alice@acme.example", "bob-rev": "bob@acme.example", "carol-dev": "carol@acme.example",
           "ops-dave": "dave@acme.example", "erin-mgr": "erin@acme.example", "frank-dev": "frank@acme.example",
           "grace-dev": "grace@acme.example", "cto-acme": "cto@acme.example"}
ALICE, ERIN, CTO, BOB_J = "alice@acme.example", "erin@acme.example", "cto@acme.example", "bob@acme.example"
FIELDS = [("customfield_10010", "Business Justification"), ("customfield_10011", "Risk Assessment"),
          ("customfield_10012", "Testing Plan"), ("customfield_10013", "Post-Mortem"),
          ("customfield_10014", "Rollback Plan")]


def t(s: str) -> datetime:
    """'10-13 10:00' -> 2026-10-13T10:00:00Z"""
    return datetime.strptime(f"2026-{s}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


class Ids:
    """Counters per kind.  GitHub ids at realistic sizes (issue #12): review, check-run, commit
    status, deployment and deployment status ids on github.com are past 2**31 (10-11 digits), so the
    demo exercises every place a 32-bit id would break (GraphQL ``Int`` does)."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {"review": 12_340_000_000, "check": 23_450_000_000, "status": 34_560_000_000,
                                  "deploy": 4_100_000_000, "dstatus": 45_670_000_000, "history": 10000,
                                  "activity": 21_474_836_480}

    def __call__(self, kind: str) -> int:
        self.n[kind] += 1 if kind != "activity" else 7919
        return self.n[kind]


# ----------------------------------------------------------------------------- the cases
# Every PR change: C(repo, merged, title, author, reviewer, **options).  Options:
#   key          ticket key created in Jira (default: the key in the title; None = no ticket created)
#   approver     Jira email that moves the ticket to Approved (None = never); approve_at (absolute time)
#   done_at      time the ticket moves to Done (None = never); default 1 day after the production deploy
#   deploys      list of (environment, created_at, creator, final_state) for this merge commit
#   reviews      list of (login, state, "head"|"old", submitted_at)
#   checks       list of (name, conclusion, completed_at) check runs on the head (all by the github-actions
#                app); statuses likewise, (context, state, created_at[, creator]) commit statuses
#   merged_by    who GitHub says merged it (default: the reviewer); QUEUE with queued_by (login) and queued_at:
#                (r2) the merge queue merged it after queued_by added it to the queue (AddedToMergeQueueEvent)
#   exp          {control suffix: status} planted outcomes; why: one line
#   r2           the contract-revision-2 rule this change plants (listed in expected.json "r2_cases", DEMO.md)
#   fields_written  {field name: time}: the field was blank at creation and written then (a changelog item)
#   pm_field     the name the post-mortem's changelog item carries (the field was renamed since; the item
#                keeps the old name and the field's id, as Jira does)
#   approver=DELETED  the ticket was approved by a Jira account deleted since (history without author)
#   deploys entries may carry a 5th element "superseded": the pipeline marks that production deployment
#                `inactive` when the next production deployment succeeds; creator None = GitHub names no user
def C(repo, merged, title, author, reviewer, **kw):
    m = t(merged)
    c = {"repo": repo, "merged": m, "title": title, "author": author, "reviewer": reviewer,
         "merged_by": kw.pop("merged_by", reviewer), "labels": kw.pop("labels", []),
         "head_ref": kw.pop("head_ref", None), "body": kw.pop("body", ""),
         "exp": kw.pop("exp", {}), "why": kw.pop("why", "clean change")}
    c.update(kw)
    return c


def pay_deploys(m, staging=40 * M, prod=3 * H):
    return [("staging", m + staging, BOT, "success"), ("production", m + prod, BOT, "success")]


E = "emergency"
PAY_CASES = [
    C(PAY, "08-12 14:00", "FEAT: payout export v1 [PAY-280]", "carol-dev", "bob-rev", approver=ALICE,
      outside=True, why="merged 2026-08-12, before the 90-day lookback: not in the population"),
    C(PAY, "10-13 10:00", "FEAT: idempotency keys for refunds [PAY-301]", "carol-dev", "bob-rev", approver=ALICE,
      merged_by=QUEUE, queued_by="bob-rev", queued_at=t("10-13 09:00"), r2="merge-queue-enqueued-by-other",
      exp={"04": "pass"},
      why="merged by the merge queue (github-merge-queue[bot]) after bob-rev, not the author, added it to the queue "
          "at 09:00: the merger is bob-rev (pass)"),
    C(PAY, "10-14 11:00", "FIX: currency rounding on invoices [PAY-302]", "frank-dev", "carol-dev", approver=ERIN,
      done_at=t("10-14 11:20"), exp={"08": "fail"},
      why="ticket closed (Done 10-14 11:20) before the production deployment (14:00): no post-implementation review"),
    C(PAY, "10-15 10:00", "SHA-256 pinning for release artefacts [PAY-303]", "grace-dev", "bob-rev", approver=ALICE,
      why="SHA-256 matches the key pattern but SHA is not an in-scope project: the ticket is PAY-303"),
    C(PAY, "10-16 15:00", "Fix flaky retry in webhook handler", "carol-dev", "bob-rev", key="PAY-304",
      approver=ALICE, head_ref="PAY-304-webhook-retry", body="Fixes PAY-304",
      exp={"01": "fail", "02": "fail", "06": "fail", "08": "fail"},
      why="no ticket key in the title (PAY-304 only in branch name and body, which do not count)"),
    C(PAY, "10-19 10:00", "FEAT: 3DS2 challenge flow [PAY-305]", "carol-dev", "bob-rev", approver=ALICE,
      reviews=[("bob-rev", "APPROVED", "old", t("10-18 15:00"))], exp={"03": "fail"},
      why="stale approval: bob-rev approved an older head; carol-dev pushed again and nobody re-approved"),
    C(PAY, "10-20 10:00", "FEAT: settlement report CSV [PAY-306]", "frank-dev", "grace-dev", approver=ERIN,
      checks=[("lint", "success", -80), ("test", "success", -75), ("build", "failure", -70)], exp={"05": "fail"},
      why="required check build concluded failure and the PR was merged anyway"),
    C(PAY, "10-21 10:00", "FIX: ledger lock timeout [PAY-307]", "grace-dev", "carol-dev", approver=ALICE,
      checks=[("lint", "success", -120), ("build", "success", -118), ("test", "failure", -115),
              ("test", "success", -60)],
      why="test failed, was re-run and passed before the merge: the latest run counts (pass)"),
    C(PAY, "10-22 10:00", "CHORE: bump psycopg to 3.3 [PAY-308]", "bob-rev", "carol-dev", approver=ERIN,
      checks=[("lint", "failure", -80), ("test", "success", -75), ("build", "success", -70)],
      why="non-required check lint failed; required test and build passed (pass)"),
    C(PAY, "10-23 16:00", "FEAT: refund webhooks v2 [PAY-309]", "carol-dev", "bob-rev", approver=ALICE,
      checks=[("lint", "success", -80), ("test", "success", -75), ("build", "success", 7)], exp={"05": "fail"},
      why="required check build completed 7 minutes after the merge"),
    C(PAY, "10-26 10:00", "FIX: null merchant id in payouts [PAY-310]", "carol-dev", "bob-rev", approver=ALICE,
      merged_by="carol-dev", exp={"04": "fail"}, why="author carol-dev merged her own PR"),
    C(PAY, "10-27 11:00", "FEAT: per-merchant fee overrides [PAY-311]", "alice-lead", "bob-rev", approver=ALICE,
      exp={"04": "fail", "06": "fail"},
      why="author alice-lead approved her own ticket as alice@acme.example (same person through people.identities)"),
    C(PAY, "10-28 10:00", "OPS: raise DB connection pool to 40 [PAY-312]", "ops-dave", "bob-rev", approver=ERIN,
      deploys="dave", exp={"04": "fail"},
      why="author ops-dave created the production deployment himself (authorised deployer, so 07 passes)"),
    C(PAY, "10-29 09:00", "FEAT: partial captures [PAY-313]", "carol-dev", "bob-rev", approver=ALICE,
      deploys=[], done_at=t("10-30 10:00"), why="batched: shipped by the production deployment of the later PAY-315 merge commit"),
    C(PAY, "10-29 11:00", "FIX: retry jitter for PSP calls [PAY-314]", "grace-dev", "carol-dev", approver=ERIN,
      deploys=[], done_at=t("10-30 10:05"),
      reviews=[("carol-dev", "CHANGES_REQUESTED", "old", t("10-28 16:00")),
               ("carol-dev", "APPROVED", "head", t("10-29 10:00"))],
      why="batched; the reviewer requested changes on an old head then approved the final head (pass)"),
    C(PAY, "10-29 14:00", "FEAT: capture expiry job [PAY-315]", "frank-dev", "bob-rev", approver=ALICE,
      deploys=[("staging", t("10-29 15:00"), BOT, "success"), ("production", t("10-29 17:00"), BOT, "success")],
      done_at=t("10-30 10:10"), why="one staging and one production deployment ship PAY-313, PAY-314 and PAY-315"),
    C(PAY, "10-30 03:00", "HOTFIX: double charge on retry [PAY-316]", "carol-dev", "bob-rev", approver=CTO,
      approve_at=t("10-30 09:00"), ticket_labels=[E], postmortem_at=t("11-08 10:00"), done_at=t("11-08 11:00"),
      pm_field="Postmortem", r2="renamed-field",
      deploys=pay_deploys(t("10-30 03:00"), 20 * M, 60 * M), exp={"06": "not_applicable", "09": "fail"},
      why="emergency (ticket label): retro-approved in time but the post-mortem came 9 days after deployment; its "
          "changelog item names the field by its old name Postmortem (matched by field id)"),
    C(PAY, "11-02 02:00", "HOTFIX: PSP timeout storm [PAY-317]", "carol-dev", "bob-rev", approver=CTO,
      approve_at=t("11-02 09:00"), ticket_labels=[E], postmortem_at=t("11-04 10:00"), done_at=t("11-05 10:00"),
      deploys=[("production", t("11-02 02:30"), BOT, "success"), ("staging", t("11-02 05:00"), BOT, "success")],
      exp={"06": "not_applicable", "09": "pass", "13": "fail"},
      why="emergency (ticket label), retro approval and post-mortem in time; shipped to production before staging"),
    C(PAY, "11-03 10:00", "FIX: dispute evidence upload size [PAY-318]", "frank-dev", "grace-dev", approver=ALICE,
      deploys=[("production", t("11-03 13:00"), BOT, "success")], exp={"13": "fail"},
      why="deployed to production without any staging deployment"),
    C(PAY, "11-04 10:00", "FEAT: merchant statement PDF [PAY-319]", "grace-dev", "bob-rev", approver=ERIN,
      reviews=[("bob-rev", "APPROVED", "head", t("11-04 06:00")),
               ("frank-dev", "CHANGES_REQUESTED", "head", t("11-04 08:00"))], exp={"03": "fail"},
      why="frank-dev requested changes after bob-rev approved; merged with that review outstanding"),
    C(PAY, "11-05 10:00", "CHORE: drop legacy v1 refunds endpoint [PAY-320]", "carol-dev", "bob-rev", approver=ALICE,
      fields={"Business Justification": "   "}, exp={"02": "fail"}, why="business justification is blank"),
    C(PAY, "11-06 14:00", "FEAT: chargeback alerts [PAY-321]", "frank-dev", "carol-dev", approver=ERIN,
      fields={"Rollback Plan": None}, exp={"02": "fail"}, why="required field Rollback Plan is missing"),
    C(PAY, "11-09 10:00", "HOTFIX: expired PSP certificate [PAY-322]", "grace-dev", "bob-rev", approver=CTO,
      approve_at=t("11-13 12:00"), issuetype="Emergency Change", postmortem_at=t("11-11 10:00"),
      done_at=t("11-13 13:00"), exp={"06": "not_applicable", "09": "fail"},
      why="emergency (issue type Emergency Change) retro-approved 4 days after the merge (limit 3)"),
    C(PAY, "11-10 10:00", "FEAT: SEPA instant payouts [PAY-323]", "carol-dev", "bob-rev", approver=ALICE,
      approve_at=t("11-11 09:00"), done_at=t("11-12 10:00"), exp={"06": "fail"},
      why="ticket approved 11-11 09:00, after the production deployment 11-10 13:00"),
    C(PAY, "11-11 10:00", "FIX: payout batch ordering [PAY-324]", "frank-dev", "bob-rev", approver=ERIN,
      deploys=[("staging", t("11-11 10:40"), BOT, "success"), ("production", t("11-11 13:00"), BOT, "failure"),
               ("production", t("11-11 15:00"), BOT, "success")],
      why="first production deployment's latest status is failure; the retry at 15:00 succeeded (pass)"),
    C(PAY, "11-12 10:00", "FEAT: webhook signing key rotation [PAY-325]", "carol-dev", "grace-dev", approver=ALICE,
      reviews=[("grace-dev", "DISMISSED", "old", t("11-11 12:00")), ("bob-rev", "APPROVED", "head", t("11-12 08:00"))],
      why="grace-dev's approval of an older head was dismissed by the push; bob-rev approved the final head (pass)"),
    C(PAY, "11-13 10:00", "FIX: FX rate cache TTL [PAY-326]", "grace-dev", "carol-dev", approver=ERIN),
    C(PAY, "11-16 10:00", "CHORE: rotate TLS certificates for PSP gateway [OPS-51]", "ops-dave", "bob-rev",
      approver=None, ticket_labels=["standard-change"], issuetype="Task", done_status="Closed",
      exp={"06": "not_applicable"}, why="standard (pre-approved) change: only 06 is not_applicable"),
    C(PAY, "11-17 10:00", "FEAT: merchant risk score v2 [PAY-327]", "frank-dev", "grace-dev", approver=ALICE,
      approve_at=t("11-17 15:00"), r2="superseded-deployment",
      deploys=[("staging", t("11-17 10:40"), BOT, "success"), ("production", t("11-17 13:00"), BOT, "success", "superseded")],
      exp={"06": "fail"},
      why="ticket approved 11-17 15:00, after the production deployment of 13:06 that the pipeline marked inactive "
          "when the 18:00 release superseded it: a deployment happened at its first success"),
    C(PAY, "11-18 10:00", "FIX: refund status polling [PAY-328]", "carol-dev", "bob-rev", approver=ERIN,
      done_at=t("11-26 10:00"), exp={"08": "pending"},
      why="ticket closed 11-26, after the as-of time: not yet happened, PIR window open until 12-02"),
    C(PAY, "11-19 10:00", "FEAT: payout holds API [PAY-329]", "grace-dev", "carol-dev", approver=ALICE,
      done_at=None, exp={"08": "pending"}, why="deployed 11-19, ticket not closed yet: PIR window open until 12-03"),
    C(PAY, "11-20 10:00", "FEAT: multi-currency wallets [PAY-330]", "carol-dev", "bob-rev", approver=ERIN,
      deploys=[], done_at=None, exp={"07": "fail", "08": "pending", "13": "pending"},
      why="approved but not deployed 86h after the merge (grace 72h): 07 fails, 08/13 wait for a deployment"),
    C(PAY, "11-21 10:00", "FIX: wallet ledger reconciliation [PAY-333]", "carol-dev", "grace-dev", approver=None,
      deploys=[], done_at=None, exp={"06": "fail", "07": "fail", "08": "pending", "13": "pending"},
      why="never approved and not deployed 86h after the merge: 06 and 07 fail, 08/13 wait for a deployment"),
    C(PAY, "11-23 08:00", "FIX: rounding in wallet top-ups [PAY-331]", "frank-dev", "bob-rev", approver=ALICE,
      approve_at=t("11-25 08:00"), deploys=[], done_at=None,
      exp={"06": "pending", "07": "pending", "08": "pending", "13": "pending"},
      why="merged 40h before the as-of, undeployed, approval only after the as-of time: all pending"),
    C(PAY, "11-24 09:00", "FEAT: wallet statements [PAY-332]", "grace-dev", "carol-dev", approver=ALICE,
      deploys=[("staging", t("11-24 10:00"), BOT, "success"), ("production", t("11-25 09:00"), BOT, "success")],
      done_at=None, exp={"07": "pending", "08": "pending", "13": "pending"},
      why="production deployment created 11-25 09:00, after the as-of time: still undeployed at the as-of"),
]

WEB_CASES = [
    C(WEB, "10-13 15:00", "FEAT: new checkout layout [WEB-501]", "grace-dev", "frank-dev", approver=ERIN),
    C(WEB, "10-14 15:00", "FIX: cart badge count [WEB-502]", "frank-dev", "grace-dev", approver=ALICE),
    C(WEB, "10-15 15:00", "FEAT: dark mode toggle [WEB-503]", "carol-dev", "frank-dev", approver=ERIN,
      checks=[], statuses=[("ci/circleci: build", "pending", -90), ("ci/circleci: build", "success", -80),
                           ("netlify/deploy-preview", "success", -78)],
      why="legacy commit statuses instead of check runs; latest per context is success (pass)"),
    C(WEB, "10-20 15:00", "FIX: typo in footer links [WEB-504]", "frank-dev", "grace-dev", approver=ALICE,
      checks=[], exp={"05": "fail"}, why="no check run and no commit status on the head commit"),
    C(WEB, "10-21 15:00", "FEAT: saved payment methods UI [WEB-505]", "grace-dev", "carol-dev", approver=ERIN),
    C(WEB, "10-22 15:00", "FEAT: address autocomplete [WEB-506]", "carol-dev", "frank-dev", approver=ALICE,
      checks=[("build", "success", -80), ("e2e", "failure", -70)], exp={"05": "fail"},
      why="e2e failed; web-frontend lists no required checks, so every check present must pass"),
    C(WEB, "10-27 15:00", "FEAT: order history pagination [WEB-507]", "frank-dev", "grace-dev", approver=ERIN,
      done_at=None, exp={"08": "fail"}, why="deployed 10-27, ticket never closed: PIR window expired 11-10"),
    C(WEB, "11-02 15:00", "FEAT: promo code field [WEB-508]", "grace-dev", "carol-dev", approver=ALICE,
      deploys=[("production", t("11-02 17:00"), "frank-dev", "success")], exp={"07": "fail"},
      why="production deployment created by frank-dev, not an authorised deployer"),
    C(WEB, "11-03 15:00", "FIX: focus trap in modal [WEB-509]", "carol-dev", "grace-dev", approver=ERIN),
    C(WEB, "11-04 15:00", "CHORE: upgrade React to 19.2 [WEB-510]", "frank-dev", "carol-dev", approver=ALICE),
    C(WEB, "11-05 15:00", "FEAT: invoice download button [WEB-511]", "carol-dev", "carol-acme", approver=ERIN,
      merged_by="frank-dev", exp={"03": "fail"},
      why="only approval is by carol-acme, Carol Dev's second GitHub account (same person via people.identities)"),
    C(WEB, "11-06 15:00", "CHORE: bump eslint config [WEB-512]", "grace-dev", "acme-review-bot[bot]", approver=ALICE,
      merged_by="frank-dev", exp={"03": "fail"}, why="only approval is by acme-review-bot[bot], a Bot account"),
    C(WEB, "11-09 15:00", "FEAT: shipping estimate widget [WEB-513]", "frank-dev", "grace-dev", approver=ERIN,
      reviews=[("grace-dev", "APPROVED", "head", t("11-09 17:00"))], exp={"03": "fail"},
      why="the only approval was submitted 2 hours after the merge"),
    C(WEB, "11-10 15:00", "FIX: checkout crash on Safari 18 [WEB-514]", "carol-dev", "frank-dev", approver=CTO,
      approve_at=t("11-11 09:00"), labels=[E], postmortem_at=None, done_at=t("11-12 10:00"),
      exp={"06": "not_applicable", "09": "fail"},
      why="emergency (PR label): retro-approved in time, post-mortem never written (window closed 11-17)"),
    C(WEB, "11-11 15:00", "FEAT: gift card balance page [WEB-515]", "grace-dev", "frank-dev", approver=ALICE),
    C(WEB, "11-12 15:00", "FEAT: cookie consent v2 [WEB-516]", "frank-dev", "carol-dev", approver=None,
      exp={"06": "fail"}, why="ticket never approved (In Review -> Done) and deployed"),
    C(WEB, "11-13 15:00", "FIX: currency selector persistence [WEB-517]", "grace-dev", "carol-dev", approver=BOB_J,
      exp={"06": "fail"}, why="ticket moved to Approved by bob@acme.example, who is not a change approver"),
    C(WEB, "11-16 15:00", "FEAT: loyalty banner [WEB-999]", "carol-dev", "grace-dev", key=None,
      exp={"01": "fail", "02": "fail", "06": "fail", "08": "fail"}, why="WEB-999 does not exist in Jira"),
    C(WEB, "11-17 15:00", "CHORE: TLS cipher update per SEC-88", "frank-dev", "grace-dev", key=None,
      exp={"01": "fail", "02": "fail", "06": "fail", "08": "fail"},
      why="only key in the title is SEC-88, project SEC is not in jira.project_keys"),
    C(WEB, "11-18 15:00", "FEAT: product compare table [WEB-518]", "grace-dev", "frank-dev", approver=ERIN,
      deploys=[("production", t("11-18 17:00"), None, "success")], r2="null-deployment-creator",
      exp={"04": "fail", "07": "fail"},
      why="the production deployment's creator is null (account deleted): unknown, so not an authorised deployer "
          "and not shown to be someone other than the author"),
    C(WEB, "11-19 15:00", "FIX: image lazy-load flicker [WEB-519]", "carol-dev", "frank-dev", approver=DELETED,
      done_at=t("11-21 10:00"), r2="deleted-jira-approver", exp={"04": "fail", "06": "fail"},
      why="WEB-519 was moved to Approved by a Jira account deleted since (history without author): unknown, in "
          "no list, not shown to be someone other than the author"),
    C(WEB, "11-23 03:00", "HOTFIX: payment button disabled for EU [WEB-520]", "frank-dev", "grace-dev", approver=CTO,
      approve_at=t("11-23 09:00"), ticket_labels=[E], postmortem_at=t("11-26 09:00"), done_at=None,
      deploys=[("production", t("11-23 04:00"), BOT, "success")], r2="postmortem-after-as-of",
      exp={"06": "not_applicable", "08": "pending", "09": "pending"},
      why="emergency deployed 11-23, retro-approved 11-23 09:00; the post-mortem was written 11-26, after the "
          "as-of time: blank as of 11-25, window open until 11-30"),
    C(WEB, "11-24 15:00", "FEAT: wishlist sharing [WEB-521]", "grace-dev", "carol-dev", approver=ERIN,
      deploys=[], done_at=None, exp={"07": "pending", "08": "pending"},
      why="merged 9h before the as-of and not deployed yet (approved: 06 passes)"),
    C(WEB, "11-25 10:00", "FEAT: product reviews carousel [WEB-522]", "carol-dev", "frank-dev", approver=ALICE,
      after=True, why="merged after the as-of time: not in the population"),
]
FILLERS = [  # more ordinary changes, clean unless they carry an r2 case: most of a real month is uneventful
    C(PAY, "10-20 15:00", "FIX: idempotency key TTL [PAY-334]", "bob-rev", "grace-dev", approver=ERIN),
    C(PAY, "10-26 15:00", "FEAT: refund reason codes [PAY-335]", "grace-dev", "bob-rev", approver=ALICE,
      checks=[("lint", "success", -80), ("test", "success", -75), ("build", "failure", -70)],
      statuses=[("build", "success", -65, "grace-dev")], r2="user-status-for-pinned-check", exp={"05": "fail"},
      why="GitHub Actions' build run failed; the author then posted a commit status build=success, which does not "
          "count: protection pins build to the github-actions app"),
    C(PAY, "11-05 15:00", "CHORE: structured logging for PSP client [PAY-336]", "frank-dev", "carol-dev", approver=ERIN,
      merged_by=QUEUE, queued_by="frank-dev", queued_at=t("11-05 14:00"), r2="merge-queue-self-enqueued",
      exp={"04": "fail"},
      why="merged by the merge queue (github-merge-queue[bot]) after the author frank-dev added it to the queue at "
          "14:00: the author merged his own PR"),
    C(PAY, "11-12 15:00", "FIX: webhook retry backoff cap [PAY-337]", "bob-rev", "frank-dev", approver=ALICE,
      fields_written={"Testing Plan": t("11-13 10:00")}, r2="docs-after-deployment", exp={"02": "fail"},
      why="Testing Plan written 11-13 10:00, after the production deployment (11-12 18:06): documentation after "
          "the fact"),
    C(PAY, "11-17 15:00", "FEAT: payout notifications [PAY-338]", "carol-dev", "grace-dev", approver=ERIN),
    C(WEB, "10-16 11:00", "FIX: mobile nav overlap [WEB-523]", "carol-dev", "grace-dev", approver=ALICE),
    C(WEB, "10-26 11:00", "FEAT: size guide modal [WEB-524]", "frank-dev", "carol-dev", approver=ERIN),
    C(WEB, "11-03 10:00", "CHORE: image CDN migration [WEB-525]", "grace-dev", "frank-dev", approver=ALICE),
    C(WEB, "11-16 10:00", "FIX: search suggestions debounce [WEB-526]", "carol-dev", "frank-dev", approver=ERIN),
    C(WEB, "11-20 10:00", "FEAT: recently viewed products [WEB-527]", "frank-dev", "grace-dev", approver=ALICE),
]
# Direct pushes to a production branch: "at" is when the push happened (the activity log says so); the
# commit's own date is "at" unless "date" backdates it; "pr_head" pushes the head commit of that
# (NOT_CHANGES) pull request instead of a new commit.
DIRECT_PUSHES = [
    {"repo": WEB, "at": t("10-29 16:00"), "pusher": "frank-dev", "label": "direct-push",
     "message": "hotfix: fix broken pricing page link", "why": "direct push to main by frank-dev (no pull request)"},
    {"repo": WEB, "at": t("10-21 12:00"), "pusher": "grace-dev", "pr_head": "BACKPORT: cart badge fix to 2026.10",
     "r2": "push-of-pr-commit-merged-elsewhere",
     "why": "grace-dev pushed the head commit of #316 (merged into release/2026.10, not main) straight to main: "
            "only a PR merged into the production branch covers a commit"},
    {"repo": WEB, "at": t("11-10 20:00"), "date": datetime(2026, 8, 20, 10, tzinfo=UTC), "pusher": "carol-dev",
     "label": "direct-push:backdated", "message": "chore: refresh robots.txt and sitemap", "r2": "backdated-push",
     "why": "carol-dev pushed to main on 11-10 20:00 (activity log) a commit dated 2026-08-20, before the window"},
]
# A force push to web-frontend's main, and a production deployment of code that is not on main: frank-dev
# pushed an experiment to main by mistake, force-pushed main back to its previous tip ten minutes later
# (the commit disappears from the branch), then deployed the experiment to production from his branch.
FORCE_PUSH = {"repo": WEB, "pushed": t("11-13 17:30"), "forced": t("11-13 17:40"), "actor": "frank-dev",
              "label": "pricing-experiment", "message": "wip: pricing page experiment",
              "branch": "feat/pricing-experiment", "deploy": ("production", t("11-13 18:00"), "frank-dev", "success")}
NOT_CHANGES = [  # (repo, closed, title, author, base, merged?); opened 5 hours before closing
    (WEB, t("11-12 09:00"), "EXPERIMENT: new mega menu [WEB-530]", "frank-dev", "main", False),
    (WEB, t("10-21 11:00"), "BACKPORT: cart badge fix to 2026.10 [WEB-502]", "grace-dev",
     "release/2026.10", True),
]


# The demo's exceptions register (include/config/exceptions.yaml, CONTROLS.md "Exceptions (r2)") and what
# each entry must come to on the as-of date: one valid entry that marks its failing row, one expired,
# one approved by the change's own author.
EXCEPTIONS = {
    "EX-2026-001": {"target": WEB, "control_id": "CC8.1-12", "status": "valid", "reason": None, "applied": True,
                    "why": "erin-mgr accepted web-frontend's unprotected production environment until the "
                           "Enterprise upgrade (expires 2027-02-01): the row stays fail and carries the id"},
    "EX-2026-002": {"target": f"{PAY}#124", "control_id": "CC8.1-05", "status": "invalid", "reason": "expired",
                    "applied": False,
                    "why": "accepted the failed build of PAY-306 until 2026-11-20, before the as-of time"},
    "EX-2026-003": {"target": f"{PAY}#131", "control_id": "CC8.1-04", "status": "invalid",
                    "reason": "self_approved", "applied": False,
                    "why": "alice@acme.example accepts the segregation-of-duties failure of her own change"},
}


# ----------------------------------------------------------------------------- builders
KEY_RE = r"\b([A-Z][A-Z0-9]+-\d+)\b"
PROJECTS = ("PAY", "WEB", "OPS")


def title_key(title: str) -> str | None:
    import re
    for k in re.findall(KEY_RE, title):
        if k.split("-")[0] in PROJECTS:
            return k
    return None


def is_emergency(c) -> bool:
    return E in c["labels"] or E in c.get("ticket_labels", []) or c.get("issuetype") == "Emergency Change"


def is_standard(c) -> bool:
    return "standard-change" in c.get("ticket_labels", [])


def slug(title: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in title.split(":", 1)[-1].split("[")[0].lower()).split()
    return "-".join(words[:4])


class RepoBuilder:
    def __init__(self, name: str, repo_id: int, first_pr: int, style: str, ids: Ids):
        self.name, self.style, self.ids, self.next_pr = name, style, ids, first_pr
        self.repo_id = repo_id
        root = {"sha": sha(f"{name}:root"), "parents": [], "author": "alice-lead", "committer": "alice-lead",
                "date": "2026-03-02T09:00:00Z", "message": "Initial commit"}
        self.commits = [root]
        self.made = {root["sha"]: root}  # every commit made, listed or not
        self.main = [(datetime(2026, 3, 2, 9, tzinfo=UTC), root["sha"])]  # first-parent chain (push time, sha)
        self.pulls, self.reviews, self.check_runs, self.statuses, self.deployments = [], {}, {}, {}, []
        # (r2) the repository activity log of main: what reached the branch, when, by whom
        self.activity = [self.log("branch_creation", self.main[0][0], "alice-lead", None, root["sha"])]

    @staticmethod
    def log(kind, at, actor, before, after) -> dict:
        return {"activity_type": kind, "ref": "refs/heads/main", "timestamp": at, "actor": actor,
                "before": before, "after": after}

    def reach_main(self, kind, at, actor, sha):
        """``sha`` becomes main's tip at ``at`` (a merge or push) and the activity log says so."""
        self.activity.append(self.log(kind, at, actor, self.main[-1][1], sha))
        self.main.append((at, sha))

    def tip_at(self, when: datetime) -> str:
        return [s for d, s in self.main if d < when][-1]

    def commit(self, label, parents, author, committer, when, message, on_main_list=True):
        c = {"sha": sha(f"{self.name}:{label}"), "parents": parents, "author": author, "committer": committer,
             "date": iso(when), "message": message}
        if on_main_list:
            self.commits.append(c)
        self.made[c["sha"]] = c
        return c["sha"]

    def default_checks(self, head_time):
        if self.name == PAY:
            return [("lint", "success", head_time + 4 * M), ("test", "success", head_time + 9 * M),
                    ("build", "success", head_time + 11 * M)]
        return [("build", "success", head_time + 8 * M), ("e2e", "success", head_time + 14 * M)]

    def add_checks(self, head, runs):
        for name, concl, done in runs:
            self.check_runs.setdefault(head, []).append(
                {"id": self.ids("check"), "name": name, "status": "completed", "conclusion": concl,
                 "started_at": iso(done - 6 * M), "completed_at": iso(done), "app": "github-actions"})

    def add_pr(self, c, number):
        """Head commit(s), the PR, reviews, checks; merge commit on main when merged into main."""
        m, author = c["merged"], c["author"]
        has_old = any(r[2] == "old" for r in c.get("reviews", []))
        first_time = m - (30 * H if has_old else 5 * H)
        head_ref = c["head_ref"] or f"{'fix' if c['title'].startswith(('FIX', 'HOTFIX')) else 'feat'}/{slug(c['title'])}"
        on_list = self.style == "merge" and c.get("base", "main") == "main"
        heads, parent = [], self.tip_at(first_time)
        times = [first_time] + ([m - 5 * H] if has_old else [])
        for i, when in enumerate(times):
            parent = self.commit(f"pr{number}:head{i}", [parent], author, author, when,
                                 f"{slug(c['title']).replace('-', ' ')} ({'review fixes' if i else 'initial'})",
                                 on_list)
            heads.append((parent, when))
        head, head_time = heads[-1]
        for old, old_time in heads[:-1]:
            self.add_checks(old, self.default_checks(old_time))
        if "statuses" in c:
            for ctx, state, off, *who in c["statuses"]:
                self.statuses.setdefault(head, []).append(
                    {"id": self.ids("status"), "context": ctx, "state": state, "created_at": iso(m + off * M),
                     "creator": who[0] if who else "circleci-bot" if ctx.startswith("ci/") else "netlify-bot",
                     "description": f"{ctx}: {state}"})
        runs = c.get("checks")
        self.add_checks(head, self.default_checks(head_time) if runs is None
                        else [(n, s, m + off * M) for n, s, off in runs])
        revs = c.get("reviews") or [(c["reviewer"], "APPROVED", "head", m - 2 * H)]
        self.reviews[str(number)] = [
            {"id": self.ids("review"), "user": u, "state": st, "commit_id": heads[0][0] if w == "old" else head,
             "submitted_at": iso(at), "body": "LGTM" if st == "APPROVED" else "Please address the comments."}
            for u, st, w, at in revs]
        merged = c.get("merged_flag", True)
        base = c.get("base", "main")
        if merged and base == "main":
            tip = self.tip_at(m)
            if self.style == "merge":
                msg = f"Merge pull request #{number} from acme/{head_ref}\n\n{c['title']}"
                mc = self.commit(f"pr{number}:merge", [tip, head], c["merged_by"], "web-flow", m, msg)
            else:
                mc = self.commit(f"pr{number}:squash", [tip], author, "web-flow", m, f"{c['title']} (#{number})")
            self.reach_main("pr_merge", m, c["merged_by"], mc)
        else:
            mc = sha(f"{self.name}:pr{number}:{'merge' if merged else 'test-merge'}")
        self.pulls.append({
            "number": number, "title": c["title"], "user": author, "state": "closed", "labels": c["labels"],
            "base": base, "head_ref": head_ref, "head_sha": head, "commit_shas": [h for h, _ in heads],
            "body": c["body"], "created_at": iso(first_time + 15 * M), "closed_at": iso(c.get("closed", m)),
            "merged_at": iso(m) if merged else None, "merged_by": c["merged_by"] if merged else None,
            "merge_commit_sha": mc, **({} if base == "main" else {"base_sha": self.made[heads[0][0]]["parents"][0]}),
            **({"queued_by": c["queued_by"], "queued_at": iso(c["queued_at"])} if c.get("queued_by") else {})})
        return mc

    def direct_push(self, dp):
        """A commit pushed to main without a pull request: a new one (dated ``date`` when backdated), or
        the head commit of an existing pull request (``pr_head``: its title, up to the ticket key)."""
        if "pr_head" in dp:
            p = next(p for p in self.pulls if p["title"].startswith(dp["pr_head"]))
            s = p["head_sha"]
            assert self.made[s]["parents"] == [self.tip_at(dp["at"])], "a push of an existing commit fast-forwards"
            self.commits.append(self.made[s])
        else:
            s = self.commit(dp["label"], [self.tip_at(dp["at"])], dp["pusher"], dp["pusher"],
                            dp.get("date", dp["at"]), dp["message"])
        self.reach_main("push", dp["at"], dp["pusher"], s)
        return s

    def force_push(self, fp):
        """A commit pushed to main, then main force-pushed back to the tip before it: the commit stays
        in the repository (on ``fp["branch"]``) but leaves main; ``fp["deploy"]`` ships it."""
        tip = self.main[-1][1]
        s = self.commit(fp["label"], [tip], fp["actor"], fp["actor"], fp["pushed"], fp["message"])
        self.activity.append(self.log("push", fp["pushed"], fp["actor"], tip, s))
        self.activity.append(self.log("force_push", fp["forced"], fp["actor"], s, tip))
        self.add_deploys(s, [fp["deploy"]], ref=fp["branch"])
        return s

    def add_deploys(self, target_sha, deploys, ref="main"):
        for env, at, creator, final, *flags in deploys:
            self.deployments.append({"sha": target_sha, "ref": ref, "environment": env, "creator": creator,
                                     "created_at": at, "final": final, "superseded": "superseded" in flags})

    def activity_payload(self) -> list[dict]:
        out = []
        for e in sorted(self.activity, key=lambda e: e["timestamp"]):
            out.append({"id": self.ids("activity"), **e, "timestamp": iso(e["timestamp"])})
        return out

    def finish_deployments(self):
        """Assign ids in time order; statuses; GitHub's auto-inactive on superseded non-production deploys."""
        self.deployments.sort(key=lambda d: d["created_at"])
        for d in self.deployments:
            d["id"] = self.ids("deploy")
            final = d.pop("final")
            who = d["creator"] or BOT  # a deployment whose creator is gone: the pipeline still posts its statuses
            d["statuses"] = [("in_progress", d["created_at"] + M, who),
                             (final, d["created_at"] + (6 if final == "success" else 8) * M, who)]
        for d in self.deployments:  # the pipeline marks a superseded production release inactive
            if d.pop("superseded"):
                nxt = next(n for n in self.deployments if n["environment"] == d["environment"]
                           and n["created_at"] > d["created_at"] and n["statuses"][-1][0] == "success")
                d["statuses"].append(("inactive", nxt["statuses"][-1][1] + timedelta(seconds=1), nxt["creator"]))
        for d in self.deployments:  # a newer successful deploy of the same non-production env inactivates older ones
            if d["environment"] == "production" or d["statuses"][-1][0] != "success":
                continue
            ok_at = d["statuses"][-1][1]
            for old in self.deployments:
                if (old is not d and old["environment"] == d["environment"] and old["created_at"] < d["created_at"]
                        and old["statuses"][-1][0] == "success"):
                    old["statuses"].append(("inactive", ok_at + timedelta(seconds=1), d["creator"]))
        allst = sorted(((st[1], d["id"], i, d) for d in self.deployments for i, st in enumerate(d["statuses"])),
                       key=lambda x: x[:3])
        ids = {(d["id"], i): self.ids("dstatus") for _, _, i, d in allst}
        return [{"id": d["id"], "sha": d["sha"], "ref": d["ref"], "environment": d["environment"],
                 "creator": d["creator"], "created_at": iso(d["created_at"]),
                 "statuses": [{"id": ids[(d["id"], i)], "state": s, "creator": who, "created_at": iso(at)}
                              for i, (s, at, who) in enumerate(d["statuses"])]} for d in self.deployments]


# ----------------------------------------------------------------------------- Jira
STATUSES = {"To Do": "new", "In Progress": "indeterminate", "In Review": "indeterminate",
            "Approved": "indeterminate", "Done": "done", "Closed": "done"}


def ticket(c, key: str, prod_at: datetime | None, ids: Ids) -> dict:
    m, dev = c["merged"], JIRA_OF[c["author"]]
    summary = c["title"].split(":", 1)[-1].split("[")[0].strip()
    emergency = is_emergency(c)
    created = m - (2 * H if emergency and not c["labels"] else 3 * D)
    approver = c.get("approver")
    approve_at = c.get("approve_at", m - 3 * H)
    done_at = c["done_at"] if "done_at" in c else (prod_at + D if prod_at else None)
    done_status = c.get("done_status", "Done")
    fields = {"Business Justification": f"Merchants and support asked for: {summary.lower()}.",
              "Risk Assessment": "Low: behind a feature flag, covered by tests." if not emergency
              else "High: production incident in progress.",
              "Testing Plan": "Unit and integration tests in CI; manual check on staging.",
              "Rollback Plan": "Revert the merge commit and redeploy the previous release.",
              "Post-Mortem": None}
    fields.update(c.get("fields", {}))
    steps = [(created + 10 * M, dev, "status", "To Do", "In Progress", {})]
    last = "In Progress"
    if not emergency:
        if approver is not None or not is_standard(c):
            steps.append((m - 6 * H, dev, "status", "In Progress", "In Review", {}))
            last = "In Review"
    if approver is not None and approve_at is not None:
        steps.append((approve_at, None if approver == DELETED else approver, "status", last, "Approved", {}))
        last = "Approved"
    if c.get("postmortem_at"):
        fields["Post-Mortem"] = f"Root cause and timeline of {summary.lower()}; follow-up actions filed."
        renamed = {"fieldId": "customfield_10013", "fieldtype": "custom"} if c.get("pm_field") else {}
        steps.append((c["postmortem_at"], dev, c.get("pm_field", "Post-Mortem"), None, fields["Post-Mortem"], renamed))
    for name, at in c.get("fields_written", {}).items():  # blank at creation, written at `at`
        steps.append((at, dev, name, None, fields[name], {}))
    if done_at is not None:
        steps.append((done_at, dev, "status", last, done_status, {}))
    steps.sort(key=lambda s: s[0])
    # rebuild from/to so the status chain is consistent after sorting
    cur, hist = "To Do", []
    for at, who, field, frm, to, extra in steps:
        if field == "status":
            frm, cur = cur, to
        hist.append({"id": str(ids("history")), "author": who, "created": iso(at),
                     "items": [{"field": field, **extra, "fromString": frm, "toString": to}]})
    kind = c.get("issuetype") or {"FEAT": "Story", "FIX": "Bug", "HOTFIX": "Bug"}.get(c["title"].split(":")[0], "Task")
    return {"project": key.split("-")[0], "summary": summary, "issuetype": kind, "status": cur,
            "priority": "Highest" if emergency else "Medium", "labels": list(c.get("ticket_labels", [])),
            "reporter": dev, "created": iso(created), "updated": iso(max([created] + [
                datetime.strptime(h["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for h in hist])),
            "fields": fields, "changelog": hist}


# ----------------------------------------------------------------------------- assembly
def build() -> tuple[dict, dict]:
    ids = Ids()
    repos = {PAY: RepoBuilder(PAY, 812_345_001, 118, "merge", ids), WEB: RepoBuilder(WEB, 812_345_002, 311, "squash", ids)}
    issues, results, excluded = {}, {}, {}
    order = []  # (repo, created, kind, payload) for PR numbering by creation time
    for c in PAY_CASES + WEB_CASES + FILLERS:
        has_old = any(r[2] == "old" for r in c.get("reviews", []))
        order.append((c["repo"], c["merged"] - (30 * H if has_old else 5 * H), "case", c))
    for repo, closed, title, author, base, merged in NOT_CHANGES:
        c = C(repo, "01-01 00:00", title, author, "bob-rev" if repo == PAY else "carol-dev", approver=None,
              base=base, merged_flag=merged, closed=closed, done_at=None)
        c["merged"] = closed
        order.append((repo, closed - 5 * H, "other", c))
    events = sorted(order, key=lambda e: (e[1], e[0]))
    numbers = {}
    for repo, _, _, c in events:
        numbers[id(c)] = repos[repo].next_pr
        repos[repo].next_pr += 1
    # build in merge order so the first-parent chain grows in time order
    stream = sorted([(c["merged"], c["repo"], "pr", c) for _, _, _, c in events] +
                    [(dp["at"], dp["repo"], "push", dp) for dp in DIRECT_PUSHES] +
                    [(FORCE_PUSH["pushed"], FORCE_PUSH["repo"], "force", FORCE_PUSH)], key=lambda e: (e[0], e[1]))
    r2_cases = {}
    for _when, repo, kind, c in stream:
        rb = repos[repo]
        if kind == "force":
            s = rb.force_push(c)
            continue
        if kind == "push":
            s = rb.direct_push(c)
            results[f"{repo}@{s}"] = {cid: "not_applicable" for cid in CONTROLS} | {"CC8.1-10": "fail", "why": c["why"]}
            if c.get("r2"):
                r2_cases[c["r2"]] = {"change_id": f"{repo}@{s}", "statuses": {"CC8.1-10": "fail"}, "why": c["why"]}
            continue
        n = numbers[id(c)]
        mc = rb.add_pr(c, n)
        cid = f"{repo}#{n}"
        if "base" in c:
            excluded[cid] = ("closed without merging" if not c["merged_flag"]
                             else f"merged into {c['base']}, not the production branch")
            key = title_key(c["title"])
            if key and key not in issues:
                issues[key] = ticket(c, key, None, ids)
            continue
        deploys = c.get("deploys")
        if deploys is None:
            deploys = pay_deploys(c["merged"]) if repo == PAY else [("production", c["merged"] + 2 * H, BOT, "success")]
        elif deploys == "dave":
            deploys = [("staging", c["merged"] + 40 * M, BOT, "success"),
                       ("production", c["merged"] + 3 * H, "ops-dave", "success")]
        rb.add_deploys(mc, deploys)
        prod = [d[1] for d in deploys if d[0] == "production" and d[3] == "success"]
        key = c["key"] if "key" in c else title_key(c["title"])
        if key:
            issues[key] = ticket(c, key, min(prod) if prod else None, ids)
        if c.get("outside") or c.get("after"):
            excluded[cid] = c["why"]
            continue
        row = {k: "pass" for k in CONTROLS}
        if repo == WEB:
            row["CC8.1-13"] = "not_applicable"
        if not is_emergency(c):
            row["CC8.1-09"] = "not_applicable"
        if is_emergency(c) or is_standard(c):
            row["CC8.1-06"] = "not_applicable"
        for k, v in c["exp"].items():
            row[f"CC8.1-{k}"] = v
        row["why"] = c["why"]
        results[cid] = row
        if c.get("r2"):
            r2_cases[c["r2"]] = {"change_id": cid, "statuses": {f"CC8.1-{k}": v for k, v in c["exp"].items()},
                                 "why": c["why"]}
    results[PAY] = {"CC8.1-11": "pass", "CC8.1-12": "pass", "CC8.1-14": "pass", "CC8.1-15": "pass",
                    "why": "classic protection with reviews, stale dismissal, checks, enforce_admins, no force push "
                           "or deletion; production environment has required reviewers; the activity log shows no "
                           "force push or deletion of main; every production deployment shipped a commit of main"}
    results[WEB] = {"CC8.1-11": "fail", "CC8.1-12": "fail", "CC8.1-14": "fail", "CC8.1-15": "fail",
                    "why": "main not protected (classic 404 'Branch not protected', no rulesets); "
                           "production environment has no protection rules; frank-dev force-pushed main on 11-13 "
                           "17:40 and deployed his branch's commit, never on main, to production at 11-13 18:00"}
    r2_cases["force-push"] = {"change_id": WEB, "statuses": {"CC8.1-14": "fail"},
                              "why": "force push to main by frank-dev on 11-13 17:40 (activity log)"}
    r2_cases["history-intact"] = {"change_id": PAY, "statuses": {"CC8.1-14": "pass"},
                                  "why": "payments-api's activity log: merges only, no force push or deletion"}
    r2_cases["off-branch-deployment"] = {
        "change_id": WEB, "statuses": {"CC8.1-15": "fail"},
        "why": "production deployment of feat/pricing-experiment's commit (not on main, no pull request) by "
               "frank-dev on 11-13 18:00"}
    r2_cases["branch-deployments"] = {"change_id": PAY, "statuses": {"CC8.1-15": "pass"},
                                      "why": "every payments-api production deployment shipped a commit of main"}
    scenario = {
        "meta": {"name": "acme demo", "as_of": iso(AS_OF),
                 "generator": "include/demo/generate.py (see docs/DEMO.md)"},
        "github": {"users": {u: {"id": i, "type": ty} for u, (i, ty) in GH_USERS.items()},
                   "repos": {name: repo_payload(rb) for name, rb in repos.items()}},
        "jira": {"deployment_type": "Cloud",
                 "users": {e: {"accountId": sha(f"jira:{e}")[:24], "displayName": n} for e, n in JIRA_PEOPLE.items()},
                 "fields": [{"id": i, "name": n, "type": "textarea"} for i, n in FIELDS],
                 "statuses": STATUSES, "issues": dict(sorted(issues.items()))},
        "slack": {"channels": {"compliance-alerts": "C0CCWATCH1"}},
    }
    expected = {"as_of": iso(AS_OF), "results": results, "excluded": excluded,
                "deliberately_missing_tickets": ["WEB-999"], "out_of_scope_keys": ["SEC-88", "SHA-256"],
                "r2_cases": dict(sorted(r2_cases.items())), "exceptions": EXCEPTIONS}
    return scenario, expected


def repo_payload(rb: RepoBuilder) -> dict:
    out = {"id": rb.repo_id, "default_branch": "main", "private": True,
           "branches": {"main": {"protected": rb.name == PAY}}, "protection": {}, "rules": {"main": []},
           "rulesets": {}, "environments": {}}
    if rb.name == PAY:
        out["protection"]["main"] = {
            "required_status_checks": {"strict": True, "contexts": ["test", "build"],
                                       "checks": [{"context": "test", "app_id": 15368},
                                                  {"context": "build", "app_id": 15368}]},
            "enforce_admins": {"enabled": True},
            "required_pull_request_reviews": {"dismiss_stale_reviews": True, "require_code_owner_reviews": False,
                                              "required_approving_review_count": 1,
                                              "require_last_push_approval": False},
            "required_signatures": {"enabled": False}, "required_linear_history": {"enabled": False},
            "allow_force_pushes": {"enabled": False}, "allow_deletions": {"enabled": False},
            "block_creations": {"enabled": False}, "required_conversation_resolution": {"enabled": False},
            "lock_branch": {"enabled": False}, "allow_fork_syncing": {"enabled": False}}
        out["environments"] = {
            "production": {"protection_rules": [{"type": "required_reviewers", "prevent_self_review": True,
                                                 "reviewers": ["ops-dave"]}],
                           "deployment_branch_policy": {"protected_branches": True, "custom_branch_policies": False}},
            "staging": {"protection_rules": [], "deployment_branch_policy": None}}
    else:
        out["environments"] = {"production": {"protection_rules": [], "deployment_branch_policy": None}}
    out["commits"] = rb.commits
    out["pulls"] = sorted(rb.pulls, key=lambda p: p["number"])
    out["reviews"] = dict(sorted(rb.reviews.items(), key=lambda kv: int(kv[0])))
    out["check_runs"] = rb.check_runs
    out["statuses"] = rb.statuses
    out["deployments"] = rb.finish_deployments()
    if rb.name == WEB:  # payments-api's log is the one the double derives from its history (docs/SANDBOX.md);
        out["activity"] = rb.activity_payload()  # web-frontend's says what the history cannot: push times, the force push
    return out


def dump(obj) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    scenario, expected = build()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scenario.json").write_text(dump(scenario), encoding="utf-8")
    (args.out / "expected.json").write_text(dump(expected), encoding="utf-8")
    print(f"wrote {args.out / 'scenario.json'} and {args.out / 'expected.json'}: "
          f"{sum(1 for k in expected['results'] if '/' in k and ('#' in k or '@' in k))} changes")


if __name__ == "__main__":
    main()
