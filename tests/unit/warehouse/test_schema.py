"""The warehouse schema's migrations: each applied once, in any landing order, keeping the data."""

from ccwatch.warehouse import connection, schema


def test_a_migration_numbered_below_the_latest_applied_one_still_runs(tmp_path, monkeypatch):
    """Numbers are reserved for changes developed in parallel: one that ships after a higher number
    was applied (8 before 5) must still run, exactly once."""
    path = tmp_path / "w.duckdb"
    every = dict(schema.MIGRATIONS)
    top = max(every)
    monkeypatch.setattr(schema, "MIGRATIONS", {1: every[1], top: every[top]})  # the highest shipped first
    connection.connect(path).close()
    monkeypatch.setattr(schema, "MIGRATIONS", every)
    con = connection.connect(path)
    try:
        assert sorted(v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()) == sorted(every)
        assert con.execute("SELECT count(*) FROM population").fetchone() == (0,)  # migration 3 ran after 8
    finally:
        con.close()
    con = connection.connect(path)  # idempotent: nothing applied twice
    try:
        assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(every)
    finally:
        con.close()


# --- migrations: every missing number applies (numbers are reserved per branch) ----------------


def _warehouse_at(path, versions):
    import duckdb

    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for v in versions:
        old.execute(schema.MIGRATIONS[v])
        old.execute("INSERT INTO schema_version VALUES (?)", [v])
    return old


def test_migration_9_adds_the_exception_column_and_keeps_existing_results(tmp_path):
    path = tmp_path / "v4.duckdb"
    old = _warehouse_at(path, (1, 2, 3, 4))
    old.execute("INSERT INTO control_results VALUES ('2026-11-24', 'acme/api#1', 'acme/api', 'CC8.1-04', 'fail', 'x')")
    old.close()
    con = connection.connect(path)
    try:
        assert {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()} >= {1, 2, 3, 4, 9}
        assert con.execute("SELECT status, exception FROM control_results").fetchall() == [("fail", None)]
        cols = [r[0] for r in con.execute("DESCRIBE control_results").fetchall()]
        assert cols == ["as_of", "change_id", "repo", "control_id", "status", "detail", "exception"]
        assert con.execute("SELECT count(*) FROM exceptions").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM exception_registers").fetchone()[0] == 0
    finally:
        con.close()


def test_a_lower_migration_landing_after_a_higher_one_still_runs(tmp_path, monkeypatch):
    """A warehouse migrated to 9 by this branch gets 5-8 when the branches that reserved them merge."""
    path = tmp_path / "w.duckdb"
    connection.connect(path).close()
    monkeypatch.setitem(schema.MIGRATIONS, 7, "CREATE TABLE IF NOT EXISTS late_arrival (x INTEGER);")
    con = connection.connect(path)
    try:
        assert con.execute("SELECT count(*) FROM late_arrival").fetchone()[0] == 0
        assert 7 in {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()}
        assert schema.migrate(con) == max(schema.MIGRATIONS)  # idempotent: nothing applied twice
        assert con.execute("SELECT count(*) FROM schema_version WHERE version = 7").fetchone()[0] == 1
    finally:
        con.close()


def test_migration_11_reads_the_merge_queue_events_of_stored_pr_nodes(tmp_path):
    """PR nodes loaded before migration 11 already hold their AddedToMergeQueueEvents: the migration
    stores them, so a PR the queue merged is not judged "queued by an unknown person" until refetched."""
    import json

    from ccwatch.warehouse.connection import connect
    from ccwatch.warehouse.schema import MIGRATIONS

    node = {"number": 12, "mergedAt": "2026-11-02T10:00:00Z", "mergedBy": {"__typename": "Bot", "login": "github-merge-queue"},
            "timelineItems": {"pageInfo": {"hasPreviousPage": False}, "nodes": [
                {"id": "AMQE_1", "createdAt": "2026-11-02T09:00:00Z",
                 "actor": {"__typename": "User", "login": "carol-dev", "id": "U_1"},
                 "enqueuer": {"login": "carol-dev", "id": "U_1"}},
                {"id": "AMQE_2", "createdAt": "2026-11-02T09:30:00+00:00",
                 "actor": {"__typename": "Bot", "login": "mergify", "id": "BOT_1"}, "enqueuer": None},
                {"id": "AMQE_3", "createdAt": "2026-11-02T09:40:00Z", "actor": None, "enqueuer": None}]}}
    path = tmp_path / "w.duckdb"
    con = connect(str(path))
    con.execute("DELETE FROM schema_version WHERE version = 11")
    con.execute("DROP TABLE merge_queue_events")
    con.execute("INSERT INTO raw_payloads VALUES ('github', 'gql_pull', 'acme/api#12', 'https://api.github.com/graphql', "
                "TIMESTAMP '2026-11-02 11:00:00', NULL, 200, ?)", [json.dumps(node)])
    con.execute("INSERT INTO raw_payloads VALUES ('github', 'gql_pull', 'acme/api#13', 'https://api.github.com/graphql', "
                "TIMESTAMP '2026-11-02 11:00:00', NULL, 200, ?)", [json.dumps({"number": 13})])  # revision 1
    con.close()
    con = connect(str(path))  # connect() migrates
    assert 11 in MIGRATIONS
    rows = con.execute('SELECT repo, pr_number, event_id, "at", enqueuer_login, actor_login, actor_type '
                       "FROM merge_queue_events ORDER BY event_id").fetchall()
    assert [(r[0], r[1], r[2], r[3].isoformat(), *r[4:]) for r in rows] == [
        ("acme/api", 12, "AMQE_1", "2026-11-02T09:00:00", "carol-dev", "carol-dev", "User"),
        ("acme/api", 12, "AMQE_2", "2026-11-02T09:30:00", "mergify[bot]", "mergify[bot]", "Bot"),
        ("acme/api", 12, "AMQE_3", "2026-11-02T09:40:00", None, None, None)]


# --- the load's own bound (issue #15: a flat backfill peak) -----------------------------------------
