"""DuckDB schema of the ccwatch warehouse, versioned in code.

Three layers, never mixed:
- raw: ``raw_payloads`` holds every API payload exactly as fetched (the three accumulating lists,
  merged, one row per item in ``raw_list_items``: warehouse/raw_lists.py);
- normalised: typed tables upserted by natural keys, derived only from raw;
- results: ``control_results`` (public interface, CONTROLS.md "Outputs") and run bookkeeping.

All timestamps are UTC, stored as naive ``TIMESTAMP``.  People are stored by the
identifier the source used (GitHub login; Jira emailAddress when visible, else accountId, else name).
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 15

# Each migration is applied once, in order; never edit a shipped one, add a new one.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS raw_payloads (
    source       VARCHAR NOT NULL,   -- 'github' | 'jira'
    kind         VARCHAR NOT NULL,   -- see docs/ARCHITECTURE.md, "Raw payload kinds"
    natural_key  VARCHAR NOT NULL,   -- e.g. 'acme/api#12', 'acme/api@<sha>', 'PAY-7'
    url          VARCHAR,            -- request URL, never with credentials
    fetched_at   TIMESTAMP NOT NULL,
    etag         VARCHAR,
    status_code  INTEGER,            -- HTTP status of the answer (404 payloads are evidence too)
    payload      JSON,
    PRIMARY KEY (source, kind, natural_key)
);

CREATE TABLE IF NOT EXISTS pull_requests (
    repo             VARCHAR NOT NULL,
    number           INTEGER NOT NULL,
    title            VARCHAR,
    author_login     VARCHAR,
    author_type      VARCHAR,        -- 'User' | 'Bot' | 'Organization'
    labels           VARCHAR[],
    base_branch      VARCHAR,
    head_sha         VARCHAR,
    merge_commit_sha VARCHAR,
    merged_at        TIMESTAMP,
    merged_by_login  VARCHAR,
    html_url         VARCHAR,
    PRIMARY KEY (repo, number)
);

CREATE TABLE IF NOT EXISTS reviews (
    repo           VARCHAR NOT NULL,
    pr_number      INTEGER NOT NULL,
    review_id      BIGINT NOT NULL,
    reviewer_login VARCHAR,
    reviewer_type  VARCHAR,
    state          VARCHAR,          -- APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id      VARCHAR,
    submitted_at   TIMESTAMP,
    PRIMARY KEY (repo, review_id)
);

CREATE TABLE IF NOT EXISTS checks (
    repo         VARCHAR NOT NULL,
    sha          VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,   -- 'check_run' | 'status'
    check_id     BIGINT NOT NULL,
    name         VARCHAR,            -- check run name, or commit status context
    status       VARCHAR,            -- check run: queued|in_progress|completed; status: NULL
    conclusion   VARCHAR,            -- check run conclusion, or commit status state
    started_at   TIMESTAMP,
    completed_at TIMESTAMP,          -- check run completed_at, or status created_at
    html_url     VARCHAR,
    PRIMARY KEY (repo, kind, check_id)
);

CREATE TABLE IF NOT EXISTS commits (
    repo            VARCHAR NOT NULL,
    branch          VARCHAR NOT NULL,
    sha             VARCHAR NOT NULL,
    position        INTEGER NOT NULL, -- 0 = oldest first-parent commit fetched; grows towards the tip
    parent_sha      VARCHAR,          -- first parent
    author_login    VARCHAR,
    committer_login VARCHAR,
    committed_at    TIMESTAMP,
    message         VARCHAR,
    pr_numbers      INTEGER[],        -- merged PRs from /commits/{sha}/pulls (empty = direct push)
    html_url        VARCHAR,
    PRIMARY KEY (repo, branch, sha)
);

CREATE TABLE IF NOT EXISTS deployments (
    repo          VARCHAR NOT NULL,
    deployment_id BIGINT NOT NULL,
    sha           VARCHAR,
    ref           VARCHAR,
    environment   VARCHAR,
    creator_login VARCHAR,
    creator_type  VARCHAR,
    created_at    TIMESTAMP,
    PRIMARY KEY (repo, deployment_id)
);

CREATE TABLE IF NOT EXISTS deployment_statuses (
    repo          VARCHAR NOT NULL,
    deployment_id BIGINT NOT NULL,
    status_id     BIGINT NOT NULL,
    state         VARCHAR,           -- success | failure | error | inactive | in_progress | queued | pending
    creator_login VARCHAR,
    created_at    TIMESTAMP,
    PRIMARY KEY (repo, status_id)
);

-- One row per rule that protects a production branch, in the rulesets vocabulary:
-- rule_type in ('pull_request','required_status_checks','non_fast_forward','deletion',
-- 'enforce_admins' (classic only)); plus a row with rule_type 'unreadable' or
-- 'not_protected' for the classic source when GitHub answered 403/404.
CREATE TABLE IF NOT EXISTS branch_rules (
    repo          VARCHAR NOT NULL,
    branch        VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,  -- 'classic' | 'ruleset'
    ruleset_id    BIGINT NOT NULL,   -- 0 for classic protection
    rule_type     VARCHAR NOT NULL,
    enforcement   VARCHAR,           -- ruleset: active | evaluate | disabled; classic: active
    bypass_actors INTEGER,           -- ruleset: number of bypass actors; classic: NULL
    parameters    JSON,
    detail        VARCHAR,           -- e.g. the API message for unreadable / not protected
    PRIMARY KEY (repo, branch, source, ruleset_id, rule_type)
);

CREATE TABLE IF NOT EXISTS environments (
    repo                   VARCHAR NOT NULL,
    name                   VARCHAR NOT NULL,
    env_exists             BOOLEAN NOT NULL,
    required_reviewers     INTEGER,  -- number of reviewers in the required_reviewers rule
    wait_timer             INTEGER,
    protected_branches     BOOLEAN,  -- deployment_branch_policy.protected_branches
    custom_branch_policies BOOLEAN,
    PRIMARY KEY (repo, name)
);

CREATE TABLE IF NOT EXISTS tickets (
    key                    VARCHAR PRIMARY KEY,
    project                VARCHAR,
    ticket_exists          BOOLEAN NOT NULL,
    summary                VARCHAR,
    issue_type             VARCHAR,
    status                 VARCHAR,
    status_category        VARCHAR,  -- new | indeterminate | done
    priority               VARCHAR,
    labels                 VARCHAR[],
    reporter               VARCHAR,
    created                TIMESTAMP,
    updated                TIMESTAMP,
    business_justification VARCHAR,  -- plain text (ADF flattened)
    risk_assessment        VARCHAR,
    testing_plan           VARCHAR,
    postmortem             VARCHAR,
    required_fields        JSON,     -- {"Rollback Plan": "text or null", ...}
    browse_url             VARCHAR
);

CREATE TABLE IF NOT EXISTS ticket_transitions (
    key         VARCHAR NOT NULL,
    history_id  VARCHAR NOT NULL,
    author      VARCHAR,
    "at"        TIMESTAMP,       -- quoted: AT is a reserved word in DuckDB 2.x (write "at" in SQL)
    from_status VARCHAR,
    to_status   VARCHAR,
    to_category VARCHAR,             -- status category of to_status when known
    PRIMARY KEY (key, history_id)
);

CREATE TABLE IF NOT EXISTS ticket_field_changes (
    key         VARCHAR NOT NULL,
    history_id  VARCHAR NOT NULL,
    field       VARCHAR NOT NULL,
    field_id    VARCHAR,
    author      VARCHAR,
    "at"        TIMESTAMP,       -- quoted: AT is a reserved word in DuckDB 2.x (write "at" in SQL)
    from_string VARCHAR,
    to_string   VARCHAR,
    PRIMARY KEY (key, history_id, field)
);

-- people.identities from the config, refreshed each run.
CREATE TABLE IF NOT EXISTS people (
    person  VARCHAR NOT NULL,
    github  VARCHAR,
    jira    VARCHAR
);

CREATE TABLE IF NOT EXISTS control_results (
    as_of      TIMESTAMP NOT NULL,
    change_id  VARCHAR NOT NULL,
    repo       VARCHAR NOT NULL,
    control_id VARCHAR NOT NULL,
    status     VARCHAR NOT NULL,     -- pass | fail | pending | not_applicable
    detail     VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    as_of        TIMESTAMP PRIMARY KEY,
    stage        VARCHAR NOT NULL,   -- loaded | evaluated | archived | failed
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    detail       VARCHAR
);
""",
    2: """
-- Slack alert memory (ccwatch.publish.slack): one row per (change, control) each time a failure
-- was alerted or reported as resolved.  The latest row of a key tells whether it is
-- currently 'alerted' (do not repeat) or 'resolved' (a new failure alerts again).
CREATE TABLE IF NOT EXISTS slack_alerts (
    as_of      TIMESTAMP NOT NULL,   -- the run whose message carried it
    change_id  VARCHAR NOT NULL,
    control_id VARCHAR NOT NULL,
    state      VARCHAR NOT NULL,     -- 'alerted' | 'resolved'
    alerted_at TIMESTAMP NOT NULL,   -- when the message was accepted by Slack (bookkeeping only)
    detail     VARCHAR,
    message_ts VARCHAR               -- Slack 'ts' of the message, when known
);
""",
    3: """
-- The population of every evaluated run (ccwatch.warehouse.population): the change_facts
-- population columns (warehouse/facts.py POPULATION_COLUMNS) as of that run, written in the
-- transaction that replaces the date's control_results, so the auditor sample of any past
-- period (ccwatch.audit.sampling) reads exactly the changes that were evaluated.  A rerun of a
-- date replaces that date's rows.  Runs evaluated before this migration have no rows.
CREATE TABLE IF NOT EXISTS population (
    as_of       TIMESTAMP NOT NULL,
    change_id   VARCHAR NOT NULL,
    repo        VARCHAR NOT NULL,
    change_kind VARCHAR,             -- 'pr' | 'direct_push'
    number      INTEGER,
    sha         VARCHAR,
    title       VARCHAR,
    author      VARCHAR,
    merged_at   TIMESTAMP,
    merged_by   VARCHAR,
    ticket_key  VARCHAR,
    deployed_at TIMESTAMP,
    deployer    VARCHAR,
    category    VARCHAR,             -- normal | standard | emergency
    pr_url      VARCHAR,
    ticket_url  VARCHAR,
    PRIMARY KEY (as_of, change_id)
);
""",
    4: """
-- Which deployments carry each change, per run (warehouse/facts.py: the one definition the
-- controls and the evidence share): per change and environment, the deployments that contain it
-- in creation order, up to the first that counts as successful.  Written by build_facts for its
-- as-of time (a rerun of a date replaces that date's rows), read by the evidence folder of that
-- date and by auditor packets for the run whose results they show.
CREATE TABLE IF NOT EXISTS change_deployments (
    as_of         TIMESTAMP NOT NULL,
    change_id     VARCHAR NOT NULL,
    environment   VARCHAR NOT NULL,
    env_kind      VARCHAR,           -- production | staging
    deployment_id BIGINT NOT NULL,
    ord           BIGINT,            -- creation rank within the repository and environment
    PRIMARY KEY (as_of, change_id, environment, deployment_id)
);
""",
    5: """
-- Who reported each check (issue #12; read by contract revision 2's required-checks rules): a check
-- run's GitHub App (REST ``app.id``/``app.slug``; GraphQL the check suite's ``app {databaseId slug}``:
-- the id classic protection's ``checks[].app_id`` and rulesets' ``integration_id`` name), and a
-- commit status's creator (REST ``creator.login``; GraphQL ``creator``, a Bot spelled with REST's
-- ``[bot]``): an app posts statuses as its bot, but any user with push access can post any context.
-- Rows loaded before this migration have NULLs until their commit is fetched again: unknown.
ALTER TABLE checks ADD COLUMN app_id BIGINT;          -- check run: the App id; status: NULL
ALTER TABLE checks ADD COLUMN app_slug VARCHAR;       -- check run: the App slug; status: NULL
ALTER TABLE checks ADD COLUMN creator_login VARCHAR;  -- status: its creator (NULL: deleted account); check run: NULL
""",
    6: """
-- Every published evidence archive (ccwatch.publish.evidence.ledger), recorded outside the archive
-- so a later rewrite of the archive contradicts a record the archive's files do not hold
-- (CONTROLS.md, "Evidence an auditor can trust (r2)").  One row per archive: a rerun of a date
-- adds a row (its numbered archive), never replaces one.  The previous_manifest_sha256 is the
-- manifest.json "previous" link of the hash chain (null for the first archive).
CREATE TABLE IF NOT EXISTS evidence_archives (
    as_of                    TIMESTAMP NOT NULL,
    path                     VARCHAR NOT NULL,   -- the archive's path when it was published
    sha256                   VARCHAR NOT NULL,   -- of the .tar.gz
    manifest_sha256          VARCHAR NOT NULL,   -- of its manifest.json
    generated_at             TIMESTAMP NOT NULL, -- manifest.json "generated_at" (wall clock, UTC)
    signed                   BOOLEAN NOT NULL,   -- manifest.json.sig present (evidence.signing_conn_id)
    previous_manifest_sha256 VARCHAR,
    PRIMARY KEY (path)
);
""",
    # 7 is reserved for a change developed in parallel (contract revision 2)
    8: """
-- (r2) The production branch's activity log (GET /repos/{o}/{r}/activity?ref=<branch>): when each
-- commit reached the branch and who pushed it (CONTROLS.md "What a change is"), and the force
-- pushes and deletions CC8.1-14 reports.  Rows of a repository and branch are replaced from the
-- merged list of every load that read the log (raw kind 'activity', accumulated by id).
CREATE TABLE IF NOT EXISTS branch_activity (
    repo          VARCHAR NOT NULL,
    branch        VARCHAR NOT NULL,
    activity_id   BIGINT NOT NULL,
    activity_type VARCHAR,           -- push | force_push | branch_creation | branch_deletion | pr_merge | merge_queue_merge
    "at"          TIMESTAMP,         -- the entry's timestamp (quoted: AT is reserved in DuckDB 2.x)
    actor_login   VARCHAR,           -- NULL: no user (deleted account, ghost): unknown
    actor_type    VARCHAR,
    before_sha    VARCHAR,           -- NULL for the all-zero sha (nothing before: a branch creation)
    after_sha     VARCHAR,           -- NULL for the all-zero sha (nothing after: a branch deletion)
    PRIMARY KEY (repo, branch, activity_id)
);

-- Whether the latest load could read the activity log of the branch: HTTP status of the answer
-- (200 readable; 403/404 kept as evidence, with GitHub's message; when: the raw row's fetched_at).
-- No row: never fetched.
CREATE TABLE IF NOT EXISTS branch_activity_reads (
    repo        VARCHAR NOT NULL,
    branch      VARCHAR NOT NULL,
    status_code INTEGER NOT NULL,
    detail      VARCHAR,
    PRIMARY KEY (repo, branch)
);

-- Every load records the first-parent chain it holds for each production branch: a commit's first
-- sighting (as-of time of the first load whose chain held it; never changed afterwards) and its
-- latest.  A push time when the activity log cannot be read (the earliest run that saw the
-- commit), and the commits that disappeared from the branch (CC8.1-14).
CREATE TABLE IF NOT EXISTS commit_sightings (
    repo             VARCHAR NOT NULL,
    branch           VARCHAR NOT NULL,
    sha              VARCHAR NOT NULL,
    first_seen_as_of TIMESTAMP NOT NULL,
    last_seen_as_of  TIMESTAMP NOT NULL,
    PRIMARY KEY (repo, branch, sha)
);
""",
    9: """
-- The exceptions register (CONTROLS.md "Exceptions (r2)", controls/exceptions.py), per run, written
-- in the transaction that replaces the date's control_results (a rerun of a date replaces that
-- date's rows of all three).  A failing row an applying entry names stays 'fail' and carries the
-- entry's id in control_results.exception (NULL otherwise: never on a pass, pending or n/a row).
ALTER TABLE control_results ADD COLUMN exception VARCHAR;

-- Every entry of the register as evaluated on a run date, valid or not, in file order.
CREATE TABLE IF NOT EXISTS exceptions (
    as_of         TIMESTAMP NOT NULL,
    entry         INTEGER NOT NULL,      -- 0-based position in the register file
    id            VARCHAR NOT NULL,
    change_id     VARCHAR,               -- a change's entry (NULL for a repository entry)
    repo          VARCHAR,               -- a repository entry (NULL for a change's entry)
    control_id    VARCHAR NOT NULL,
    justification VARCHAR NOT NULL,
    approved_by   VARCHAR NOT NULL,
    approved_at   TIMESTAMP NOT NULL,
    expires       TIMESTAMP NOT NULL,
    status        VARCHAR NOT NULL,      -- valid | invalid
    reason        VARCHAR,               -- invalid: the first failed rule (docs/EXCEPTIONS.md); NULL when valid
    detail        VARCHAR NOT NULL,      -- one line: every failed rule, or what the entry did
    result_status VARCHAR,               -- the status of the row it names on this run (NULL: no such row)
    applied       BOOLEAN NOT NULL,      -- that row fails and carries this id in control_results.exception
    PRIMARY KEY (as_of, id)
);

-- The register file each run evaluated, byte for byte (config/exceptions.yaml of the evidence).
CREATE TABLE IF NOT EXISTS exception_registers (
    as_of   TIMESTAMP PRIMARY KEY,
    path    VARCHAR NOT NULL,            -- as resolved when it was read
    sha256  VARCHAR NOT NULL,
    content BLOB NOT NULL,
    entries INTEGER NOT NULL
);
""",
    10: """
-- (r2) Population reconciliation (CONTROLS.md "Evidence an auditor can trust", warehouse/reconciliation.py):
-- per run and repository, GitHub search's independent count of the PRs merged into the production
-- branch in the window (raw kind 'merged_count') against the population's PR changes.  Written in
-- the transaction that replaces the date's control_results (a rerun of a date replaces its rows).
CREATE TABLE IF NOT EXISTS reconciliation (
    as_of            TIMESTAMP NOT NULL,
    repo             VARCHAR NOT NULL,
    branch           VARCHAR NOT NULL,
    window_from      TIMESTAMP NOT NULL,
    window_to        TIMESTAMP NOT NULL,
    search_query     VARCHAR,            -- the search string of the stored count (NULL: none stored)
    search_count     INTEGER,            -- its issueCount (NULL: no count for this window: a mismatch)
    searched_at      TIMESTAMP,          -- fetched_at of the count
    population_count INTEGER NOT NULL,   -- PR changes of the repository in the population
    direct_pushes    INTEGER NOT NULL,   -- direct-push changes (not counted by the search)
    "match"          BOOLEAN NOT NULL,
    detail           VARCHAR NOT NULL,
    PRIMARY KEY (as_of, repo)
);

-- (r2) Repository settings as a nightly history (warehouse/settings_history.py): every load copies the
-- settings payloads in force for each configured repository (branch protection, the branch's rules,
-- the rulesets they name, the production and staging environments), as fetched or as revalidated by
-- a 304.  Append-only: a load of date D replaces only D's rows; no other date's row is ever changed.
CREATE TABLE IF NOT EXISTS settings_history (
    as_of        TIMESTAMP NOT NULL,     -- the run that loaded it
    repo         VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,       -- branch_protection | branch_rules | ruleset | environment
    natural_key  VARCHAR NOT NULL,
    observed_at  TIMESTAMP NOT NULL,     -- when GitHub answered it (fetch or 304 revalidation)
    url          VARCHAR,
    status_code  INTEGER,
    payload      JSON,
    sha256       VARCHAR NOT NULL,       -- of the payload's canonical JSON
    PRIMARY KEY (as_of, kind, natural_key)
);
""",
    11: """
-- (r2) Merge queues (CONTROLS.md "People": the merger of a PR a merge queue merged is whoever added it
-- to the queue).  One row per GraphQL ``AddedToMergeQueueEvent`` of a merged PR (the gql_pull node's
-- ``timelineItems``, the last 5), replaced with the PR's node.  The enqueuer is ``enqueuer`` (a User),
-- else the event's ``actor`` (REST spelling: a Bot with ``[bot]``); NULL when GitHub names nobody.
-- Required checks pinned to apps need no table: classic ``checks[].app_id`` and rulesets'
-- ``integration_id`` are in ``branch_rules.parameters`` as fetched (controls/testing.py).
CREATE TABLE IF NOT EXISTS merge_queue_events (
    repo           VARCHAR NOT NULL,
    pr_number      INTEGER NOT NULL,
    event_id       VARCHAR NOT NULL,  -- the event's node id
    "at"           TIMESTAMP,         -- createdAt (quoted: AT is reserved in DuckDB 2.x)
    enqueuer_login VARCHAR,           -- who added the PR to the queue; NULL: unknown (deleted account, none named)
    actor_login    VARCHAR,
    actor_type     VARCHAR,           -- User | Bot | ...
    PRIMARY KEY (repo, pr_number, event_id)
);

-- PR nodes stored before this migration already carry their events: read them now, so a PR merged by
-- the queue is not judged "queued by an unknown person" until it is fetched again.
INSERT OR REPLACE INTO merge_queue_events
SELECT repo, pr_number, event_id, "at", coalesce(enqueuer_login, actor_login), actor_login, actor_type
FROM (
    SELECT split_part(r.natural_key, '#', 1) AS repo, TRY_CAST(split_part(r.natural_key, '#', 2) AS INTEGER) AS pr_number,
           json_extract_string(e.v, '$.id') AS event_id,
           TRY_CAST(json_extract_string(e.v, '$.createdAt') AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS "at",
           nullif(json_extract_string(e.v, '$.enqueuer.login'), 'ghost') AS enqueuer_login,
           nullif(json_extract_string(e.v, '$.actor.login')
                  || CASE WHEN json_extract_string(e.v, '$.actor.__typename') = 'Bot'
                           AND NOT ends_with(json_extract_string(e.v, '$.actor.login'), '[bot]') THEN '[bot]' ELSE '' END,
                  'ghost') AS actor_login,
           json_extract_string(e.v, '$.actor.__typename') AS actor_type
    FROM raw_payloads r, unnest(json_extract(r.payload, '$.timelineItems.nodes[*]')) AS e(v)
    WHERE r.source = 'github' AND r.kind = 'gql_pull' AND r.status_code = 200
)
WHERE pr_number IS NOT NULL AND event_id IS NOT NULL;
""",
    12: """
-- The accumulating raw lists (a branch's 'commits', an environment's 'deployments', a branch's
-- 'activity' log) held one row per item, in the list's order (warehouse/raw_lists.py): stored as
-- one value, a list that grows with the deployment's age outgrew the load's memory bound.  The
-- list's raw_payloads row keeps the fetch's url, time, etag and status, with payload NULL.  Rows
-- stored before this migration keep their list in payload until the next load of their key.
CREATE TABLE IF NOT EXISTS raw_list_items (
    source       VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,
    natural_key  VARCHAR NOT NULL,
    ord          INTEGER NOT NULL,   -- counted from the list's end: 0 is its last (oldest) item
    item         JSON
);
-- No primary key: (source, kind, natural_key, ord) is unique by construction (a load deletes a key's
-- rows from the first ord it writes on, then inserts), and the index made the backfill's inserts
-- and commit about twice as slow (millions of items) while a key's rows are found by a scan anyway.
""",
    13: """
-- What a night's merge needs of a stored item without reading the item (warehouse/raw_lists.py):
-- its id and its place in the kind's newest-first order, as the load computed them in Python when
-- it wrote the item.  item_id: the sha (commits) or the id in decimal (deployments, activity); NULL
-- when the item is not an object with an id of that type.  sort_text / sort_num: the order's text
-- (committer date, created_at, timestamp) and number (the id; NULL for commits).  Rows written
-- before this migration have sort_text NULL: their key's next merge reads the items and writes
-- them again with these columns.
-- (The table as migration 12 makes it first, for a warehouse that gets this number before 12.)
CREATE TABLE IF NOT EXISTS raw_list_items (source VARCHAR NOT NULL, kind VARCHAR NOT NULL,
                                           natural_key VARCHAR NOT NULL, ord INTEGER NOT NULL, item JSON);
ALTER TABLE raw_list_items ADD COLUMN IF NOT EXISTS item_id VARCHAR;
ALTER TABLE raw_list_items ADD COLUMN IF NOT EXISTS sort_text VARCHAR;
ALTER TABLE raw_list_items ADD COLUMN IF NOT EXISTS sort_num VARCHAR;
""",
    14: """
-- (stop 30) The anchor of the ingest state file (warehouse/state_anchor.py): the sha256 of the state
-- the last committed load wrote (one row, replaced in each load's transaction).  A load refuses a
-- fetch that planned from any other state.
CREATE TABLE IF NOT EXISTS ingest_states (
    loaded_as_of TIMESTAMP PRIMARY KEY,   -- the state's loaded_as_of: the load that wrote it
    sha256       VARCHAR NOT NULL         -- ccwatch.ingest.state.state_digest of that state
);
""",
    15: """
-- (issue #15) What each change folder of an evidence date was written from, so the next date can carry
-- an unmoved folder over (publish/evidence/carry.py): the folder's key (its inputs' digest) and which
-- raw records it read.  Written after the date's archive is published, for the manifest it names;
-- only the latest two dates are kept (a date carries from the one before it).
CREATE TABLE IF NOT EXISTS evidence_folder_keys (
    evidence_date    DATE NOT NULL,
    manifest_sha256  VARCHAR NOT NULL,   -- of the manifest.json that lists the folder's files
    folder           VARCHAR NOT NULL,   -- changes/<folder>/
    key              VARCHAR NOT NULL,
    fetched_min      TIMESTAMP,          -- fetch times of the records the folder copies
    fetched_max      TIMESTAMP
);
CREATE TABLE IF NOT EXISTS evidence_folder_inputs (
    evidence_date    DATE NOT NULL,
    folder           VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,   -- a raw_payloads key the folder read (found or absent)
    kind             VARCHAR NOT NULL,
    natural_key      VARCHAR NOT NULL
);
""",
}


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the highest version now in force.

    Applies every migration whose number is not recorded yet, in order, not only those above the
    highest: numbers are reserved per branch, so a warehouse may have 6 before 5 lands."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    applied = {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()}
    for v in sorted(MIGRATIONS):
        if v not in applied:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(MIGRATIONS[v])
                con.execute("INSERT INTO schema_version VALUES (?)", [v])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            applied.add(v)
    return max(applied, default=0)
