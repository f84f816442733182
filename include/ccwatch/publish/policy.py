"""POLICY.md and the auditor's README.txt, generated from the configuration.

Ids and names are the public ones of CONTROLS.md; the statements are the "passes when"
column with the configured values filled in, so the auditor can compare the policy in
force with the evidence of the same archive.
"""

from __future__ import annotations

from datetime import datetime

from ccwatch.common.times import iso
from ccwatch.controls.catalogue import CONTROL_NAMES, REPO_CONTROLS
from ccwatch.settings import Settings


def _checks(r) -> str:
    """A repository's required checks; (r2) a pinned one with its app: `build` (app `github-actions`)."""
    apps = dict(r.required_check_apps)
    if not r.required_checks:
        return "every check present"
    return ", ".join(f"`{c}`" + (f" (app `{apps[c]}`)" if c in apps else "") for c in r.required_checks)


def _list(items, empty: str = "(none configured)") -> str:
    items = [str(i) for i in items]
    return ", ".join(f"`{i}`" for i in items) if items else empty


def control_statements(s: Settings) -> dict[str, str]:
    """One sentence per control, with the configured values filled in."""
    j, p, w = s.jira, s.people, s.windows
    fields = [j.fields.business_justification, j.fields.risk_assessment, j.fields.testing_plan]
    stale = "" if not s.review.allow_stale_approval else " (approvals of an earlier commit are accepted)"
    stale = stale or " on the pull request's final head commit"
    self_merge = ("may merge their own pull request" if s.sod.allow_self_merge else
                  "does not merge the pull request (when a merge queue merged it: does not add it to the queue)")
    staged = [r.repo for r in s.github.repositories if r.staging_environments]
    return {
        "CC8.1-01": f"Every pull request merged into a production branch names, in its title, an existing Jira "
        f"ticket of one of the projects {_list(j.project_keys)} (first match of `{j.ticket_key_pattern}`).",
        "CC8.1-02": f"The linked ticket documents the change: the fields {_list(fields + list(j.required_fields))} "
        f"are all non-blank at its production deployment (while undeployed: now); documentation written after "
        f"the deployment does not count, except that an emergency change may complete it within "
        f"{w.postmortem_days} days of the deployment.",
        "CC8.1-03": f"At least {s.review.min_approvals} APPROVED review(s) by people other than the author are "
        f"submitted before the merge{stale}, no reviewer's latest review at the merge asks for changes, "
        f"and bot accounts never count as reviewers.",
        "CC8.1-04": f"The author {self_merge}, does not create its production deployment (deployment "
        f"automation {_list(s.github.deploy_automation)} is the pipeline, not a person) and does not give "
        f"its ticket's final approval; an actor the source does not name (a deleted or anonymous user) cannot "
        f"be shown to be someone else, so such a clause fails.",
        "CC8.1-05": "The pull request's head commit ran its required checks (per repository below, or every "
        "check present) and each concluded success, neutral or skipped before the merge; a check pinned to a "
        "GitHub App (branch protection, an active ruleset, or `{name, app}` below) counts only when that app "
        "reported it, and a check without a result is never green.",
        "CC8.1-06": f"Normal changes are moved into {_list(j.approval_statuses)} by a change approver "
        f"({_list(p.change_approvers)}) other than the author before their production deployment; pending "
        f"for {w.deploy_grace_hours} hours after the merge, then failing; standard and emergency changes "
        f"follow their own procedure.",
        "CC8.1-07": f"Every change reaches production through a successful GitHub deployment to a production "
        f"environment created by an authorised deployer ({_list(p.authorized_deployers)}) within "
        f"{w.deploy_grace_hours} hours of the merge.",
        "CC8.1-08": f"The ticket reaches a Done status after the production deployment and within "
        f"{w.pir_days} days of it (post-implementation review).",
        "CC8.1-09": f"Emergency changes are approved retroactively by an emergency approver "
        f"({_list(p.emergency_approvers)}) within {w.emergency_retro_days} days of the merge, and their "
        f"ticket's `{j.fields.postmortem}` field is filled within {w.postmortem_days} days of the deployment.",
        "CC8.1-10": "Changes reach a production branch only through merged pull requests; every direct push "
        "is a failure. A direct push is dated by when it was pushed (the repository activity log, else the first "
        "ccwatch run that saw it), never by its own commit dates alone.",
        "CC8.1-11": "Each production branch requires a pull request with at least one approving review, "
        "dismisses stale approvals, requires status checks, applies to administrators and forbids force "
        "pushes and deletion (classic protection or active rulesets).",
        "CC8.1-12": "Each production environment exists and has required reviewers or a deployment branch "
        "policy limited to protected branches.",
        "CC8.1-13": f"For repositories with staging environments ({_list(staged)}), each change is deployed "
        f"successfully to staging before its production deployment.",
        "CC8.1-14": f"Within the last {s.lookback_days} days the repository activity log shows no force push to "
        "and no deletion of a production branch, and no commit that an earlier ccwatch run saw on the branch's "
        "first-parent history has disappeared from it; an activity log that cannot be read is a failure.",
        "CC8.1-15": f"Every deployment to a production environment that first reached success within the last "
        f"{s.lookback_days} days shipped a commit of the production branch's first-parent history, or the head "
        "commit of a pull request into that branch with an APPROVED review on that commit, by someone other than "
        "its author and not a bot, submitted before the deployment was created.",
    }


def render_policy(s: Settings, as_of: datetime) -> str:
    """POLICY.md: the change-management control statement in force for this run."""
    j, p, w = s.jira, s.people, s.windows
    out = [
        "# Change-management control statement (SOC 2 CC8.1)",
        "",
        f"Generated by ccwatch from the configuration in force for the run as of {iso(as_of)}",
        f"(configuration SHA-256 `{s.sha256 or 'unknown'}`). It states what every change must satisfy;",
        "`control_results.csv` in the same folder is the evidence of each change against it.",
        "",
        "## Scope",
        "",
        f"Every change merged or pushed into a production branch within the last {s.lookback_days} days:",
        "",
        "| repository | production branch | production environments | staging environments | required checks |",
        "|---|---|---|---|---|",
    ]
    for r in s.github.repositories:
        out.append(
            f"| `{r.repo}` | `{r.production_branch}` | {_list(r.production_environments)} | "
            f"{_list(r.staging_environments, 'none')} | {_checks(r)} |"
        )
    out += [
        "",
        f"Tickets live in the Jira projects {_list(j.project_keys)}.",
        "",
        "## Roles",
        "",
        f"- Change approvers (final approval, CC8.1-06): {_list(p.change_approvers)}",
        f"- Emergency approvers (CC8.1-09): {_list(p.emergency_approvers)}",
        f"- Authorised deployers (CC8.1-07): {_list(p.authorized_deployers)}",
        f"- Deployment automation (not a person for segregation of duties): {_list(s.github.deploy_automation)}",
        f"- Peer reviewers: anyone but the author; at least {s.review.min_approvals} approval(s); bots never count.",
    ]
    if p.identities:
        out += ["", "People known under several identities:", "", "| person | GitHub | Jira |", "|---|---|---|"]
        out += [f"| {i.name} | {i.github or ''} | {i.jira or ''} |" for i in p.identities]
    em = j.emergency
    out += [
        "",
        "## Change categories",
        "",
        f"- **Standard** (pre-approved): ticket labels {_list(j.standard_change.labels)}. Reviewed and tested "
        "like any change; no separate final approval (CC8.1-06 not applicable).",
        f"- **Emergency**: ticket labels {_list(em.labels)}, issue types {_list(em.issue_types)}, priorities "
        f"{_list(em.priorities)}, or the pull request label `emergency`. Reviewed and tested; approved "
        "retroactively (CC8.1-09 instead of CC8.1-06).",
        "- **Normal**: every other change.",
        "",
        "## Windows",
        "",
        f"- Deployment and final approval: within {w.deploy_grace_hours} hours of the merge",
        f"- Post-implementation review (ticket Done): within {w.pir_days} days of the deployment",
        f"- Emergency retroactive approval: within {w.emergency_retro_days} days of the merge",
        f"- Emergency post-mortem: within {w.postmortem_days} days of the deployment",
        "",
        "## Controls",
        "",
        "Status words: `pass`, `fail`, `pending` (a window is still open), `not_applicable`. Missing "
        "evidence is a failure.",
        "",
    ]
    for cid, sentence in control_statements(s).items():
        level = " (per repository)" if cid in REPO_CONTROLS else ""
        out.append(f"- **{cid} {CONTROL_NAMES[cid]}**{level}: {sentence}")
    out.append("")
    return "\n".join(out)


_README_LAYOUT = """\
Layout
------
Every file this folder can hold is named below; a file marked "(only when ...)" is absent
otherwise. The raw-record JSON files are {source, kind, natural_key, url, fetched_at, etag,
status_code, payload}: the payload exactly as the API returned it.

control_results.csv   one row per change (or repository) and control for this date:
                      as_of, change_id, repo, control_id, status, detail, exception
population.csv        every change in the evaluation window (the population sampled from):
                      change_id, repo, number, sha, title, author, merged_at, merged_by,
                      ticket_key, deployed_at, deployer, category, change_kind
reconciliation.csv    per repository, GitHub search's independent count of the PRs merged into
                      the production branch in the window against the population's PR changes:
                      repo, branch, window, search_count, population_count, direct_pushes, match,
                      search_query, searched_at, detail. match=false fails the run's
                      reconciliation check (report, Slack, manifest.json "reconciliation")
branch_history.csv    the production branch's first-parent commits of the window's changes, in
                      branch order: repo, branch, position, sha, parent_sha, committed_at,
                      reached_at, change_kind, pr_number, change_id, deployed_here (deployments
                      of exactly this commit), carried_by (the deployments that carry its change).
                      "Deployment X contains change Y": X's commit is Y's commit or later
                      (a higher position) on the same branch
exceptions.csv        every entry of the risk-acceptance register with its verdict (valid or not,
                      applied or not); a header alone when no register was configured
changes/<folder>/     the evidence of one change:
                        change.json            the change's facts, its control results, the
                                               evidence files present and what was not found
                        pull.graphql.json      the pull request as GitHub GraphQL returned it,
                                               with its reviews, head-commit check runs and statuses
                        pull.json, reviews.json, check_runs.json, statuses.json
                                               (only when GraphQL could not give that piece whole:
                                               the REST answer, which then counts)
                        commit.json            (direct pushes) the commit
                        commit_pulls.graphql.json, commit_pulls.json
                                               (direct pushes) the commit's pull-request lookup,
                                               GraphQL and/or REST (empty: no PR into the branch)
                        deployments.json       per environment, the deployments containing the
                                               change up to the first successful one, with statuses
                                               (the list's URL; when it was fetched: the repository
                                               folder's deployment_lists.json)
                        deployment_statuses.graphql.json
                                               (only when statuses came through GraphQL) those
                                               deployments' status nodes
                        ticket.json, ticket_changelog.json, or ticket_missing.json (Jira)
                        ticket_fields.json     (with ticket.json) the Jira field ids of ticket.json
                                               and of its changelog -> their names, from Jira's
                                               field list (/rest/api/2/field, jira_field_list.json);
                                               ticket.json is unchanged
                        settings_at_merge.json the repository settings snapshot (protection, rules,
                                               rulesets, environments) in force when the change
                                               reached the branch, or a note that the nightly
                                               settings history does not reach back that far
                      Repository folders (owner__repo) hold repository.graphql.json (the
                      repository's settings as GitHub's GraphQL API gives them, with the
                      production branch's tip and whether it is protected; repo.json, the
                      REST body, when the warehouse was filled before they were asked that way;
                      branch.json, REST's branch, only when GitHub did not say there whether
                      it is protected), branch_protection.json, branch_rules.json, environments.json
                      (CC8.1-11, CC8.1-12), activity.json (the production branch's activity log,
                      CC8.1-14), deployment_lists.json (when each environment's deployments
                      list was last fetched or revalidated) and rulesets.json (only when rules
                      come from rulesets). A change folder whose records did not move keeps its
                      bytes from one date to the next.
                      Folder names: owner/repo#12 -> owner__repo__pr-12,
                      owner/repo@<sha> -> owner__repo__push-<sha>.
jira_field_list.json  (when Jira's field list is stored) that list as fetched, with its fetch time
gx_validation.json    the Great Expectations validation results of the run
oscal-assessment-results.json   the same results as an OSCAL 1.2 assessment-results document:
                      one observation per control result that is not a pass (fail,
                      pending, not_applicable; every result is in control_results.csv),
                      one finding per failure
report.html           the human-readable report (self-contained; open in any browser)
POLICY.md             the change-management control statement in force (from the config)
README.txt            this file
config/ccwatch.yaml   the configuration file in force, byte for byte (it never holds credentials)
config/exceptions.yaml   (only when an exceptions register is configured) the register evaluated
SHA256SUMS            sha256 of every file except itself and the manifest.json* files
manifest.json         every file's sha256 and size, the as-of time, when it was generated and by
                      which run, the fetch times of the raw payloads, the previous date's
                      manifest sha256 (a hash chain), the population reconciliation, tool and
                      library versions, the configuration file's sha256 and the source endpoints
                      (no credentials)
manifest.json.sig     (only when signed) Ed25519 signature of the exact bytes of manifest.json
manifest.json.tsr     (only when time-stamped) RFC 3161 time-stamp reply over manifest.json's sha256
"""

_README_VERIFY = """\
How to verify
-------------
1. The archive ccwatch-evidence-<date>.tar.gz is reproducible from its folder: re-creating it
   from the same files gives the same bytes. Record its sha256 (sha256sum ccwatch-evidence-<date>.tar.gz)
   and compare it, and manifest.json's sha256, with the records kept outside the archive: the
   nightly Slack line and the warehouse table evidence_archives.
2. Unpack it and check every file against the recorded hashes:
       tar -xzf ccwatch-evidence-<date>.tar.gz && cd <date> && sha256sum -c SHA256SUMS
3. Check the manifest (also detects files added after the run), with Python 3 only, from
   inside the unpacked <date>/ folder:

python3 - <<'PY'
import hashlib, json, pathlib
root = pathlib.Path('.')
m = json.loads((root / 'manifest.json').read_text())
listed = {f['path']: f for f in m['files']}
beside = {'manifest.json', 'manifest.json.sig', 'manifest.json.tsr'}
for p in sorted(x for x in root.rglob('*') if x.is_file() or x.is_symlink()):
    rel = p.relative_to(root).as_posix()
    if rel in beside:
        continue
    f = listed.pop(rel, None)
    if f is None or p.is_symlink():
        print('added:', rel)
    elif hashlib.sha256(p.read_bytes()).hexdigest() != f['sha256']:
        print('modified:', rel)
for rel in listed:
    print('missing:', rel)
print('checked', len(m['files']), 'files')
PY

   or with ccwatch installed (also checks the signature, the time-stamp and the hash chain):
       python -m ccwatch verify ARCHIVE --public-key ccwatch-signing.pub.pem --tsa-ca tsa-ca.pem
       python -m ccwatch verify --chain EVIDENCE_DIR --public-key ccwatch-signing.pub.pem
   (exit 0: everything matches; 1: a mismatch; 2: unreadable or malformed input)
4. A hash manifest proves only that the files agree with it; whoever can rewrite the files can
   rewrite it too. What this archive offers beyond that:
{trust}
5. Compare POLICY.md and config/ccwatch.yaml with the policy you approved, and the configuration
   sha256 (sha256sum config/ccwatch.yaml) with manifest.json "config".
6. Sample rows of control_results.csv and re-perform them from changes/<folder>/ (the URL and
   fetch time of each payload say where it came from).
7. The CSV files hold the data verbatim (titles and messages are written by the people audited): a
   cell may start with = + - @ and a spreadsheet opened by double-click evaluates it as a formula.
   Import the CSVs with every column as Text (or read them in a text editor); ccwatch never alters
   a value, as they are evidence (docs/AUDITOR.md, "Opening the CSV files safely").
An archive is never overwritten: a rerun of the same date writes ccwatch-evidence-<date>.1.tar.gz
(then .2, ...); the folder <date>/ always holds the latest run of that date.
"""


def readme_trust(trust: dict | None) -> str:
    """Step 4 of README.txt: signed or unsigned, time-stamped or not, and the chain."""
    sig = (trust or {}).get("signature") or {"status": "unsigned"}
    ts = (trust or {}).get("timestamp") or {"status": "none"}
    out = []
    if sig.get("status") == "signed":
        out += ["   - SIGNED: manifest.json.sig is an Ed25519 signature of manifest.json by the key",
                f"     {sig.get('public_key_fingerprint')}. Obtain the public key from the company",
                "     (never from this archive), check its fingerprint and the signature:",
                "       openssl pkey -pubin -in ccwatch-signing.pub.pem -outform DER | sha256sum",
                "       openssl pkeyutl -verify -pubin -inkey ccwatch-signing.pub.pem -rawin \\",
                "           -in manifest.json -sigfile manifest.json.sig",
                "     A manifest.json.sig missing from this archive is a failure."]
    else:
        out += ["   - UNSIGNED: this evidence is not signed (evidence.signing_conn_id was not set);",
                "     only the records kept outside the archive (step 1) and the hash chain show it",
                "     was not rewritten."]
    if ts.get("status") == "requested":
        out += [f"   - TIME-STAMPED: manifest.json.tsr is an RFC 3161 time-stamp from {ts.get('tsa_url')}",
                "     over manifest.json's sha256: the manifest existed at the stamped time. With the",
                "     TSA's root certificate (from the TSA, never from this archive):",
                "       openssl ts -verify -in manifest.json.tsr -data manifest.json -CAfile tsa-ca.pem",
                "       openssl ts -reply -in manifest.json.tsr -text     (shows the time)",
                "     A manifest.json.tsr missing from this archive is a failure."]
    else:
        out += ["   - NOT TIME-STAMPED (evidence.timestamp_url was not set): generated_at in the manifest",
                "     is the writer's own clock."]
    out += ['   - HASH CHAIN: manifest.json "previous" holds the sha256 of the previous evidence date\'s',
            "     manifest.json: rewriting one day breaks the link from the next day."]
    return "\n".join(out)


def render_readme(s: Settings, as_of: datetime, trust: dict | None = None) -> str:
    """README.txt for the auditor: layout, each control, statuses, how to verify (``trust``: the
    manifest's signature and timestamp blocks; None reads as unsigned and not time-stamped)."""
    day = iso(as_of)[:10]
    out = [
        f"ccwatch evidence for {day} (as of {iso(as_of)})",
        "=" * 60,
        "",
        "SOC 2 CC8.1 change-management evidence collected from GitHub and Jira by ccwatch.",
        f"Population: every change merged or pushed into a production branch within {s.lookback_days}",
        "days before the as-of time, in the repositories of POLICY.md. Events after the as-of time",
        "are treated as not yet happened.",
        "",
        _README_LAYOUT,
        "Statuses",
        "--------",
        "pass, fail, pending (a window is still open: becomes pass or fail on a later run),",
        "not_applicable. Missing evidence is fail, never pass.",
        "",
        "Controls",
        "--------",
    ]
    for cid, sentence in control_statements(s).items():
        level = " [per repository]" if cid in REPO_CONTROLS else ""
        out.append(f"{cid} {CONTROL_NAMES[cid]}{level}")
        out.append(f"    {sentence.replace('`', '')}")
    out += ["", _README_VERIFY.replace("{trust}", readme_trust(trust))]
    return "\n".join(out)
