"""The batches file a repository's fetch leaves to the org-wide batches (ingest/github/batches.py):
written and read back unchanged, and a malformed or foreign one refused, naming the file and the
repository (the stage then fails: nothing is asked on a guess)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from ccwatch.common.errors import StageError
from ccwatch.ingest import staging
from ccwatch.ingest.github.batches import read_deferred, write_deferred
from ccwatch.ingest.github.commit_links import links
from ccwatch.ingest.github.deployment_statuses import wanted
from ccwatch.ingest.github.fetch import Deferred, Guard

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)
REPO = "acme/payments-api"
SINCE = datetime(2026, 11, 24, 2, 0, 5, 123456, tzinfo=UTC)


def deferred() -> Deferred:
    dep = {"id": 4_100_000_001, "node_id": "DE_kwDO1", "created_at": "2026-11-24T10:00:00Z", "sha": "d" * 40,
           "environment": "production", "payload": {"not": "kept"}}
    commit = {"sha": "a" * 40, "commit": {"committer": {"date": "2026-11-24T09:00:00Z"}}}
    return Deferred([wanted(REPO, [dep["id"]], [dep], "production")],
                    links(REPO, "main", [commit], SINCE),
                    Guard(SINCE.isoformat(), [12, 15], None, 2, True, [15]))


def test_a_batches_file_reads_back_what_was_written_with_its_digest(tmp_path):
    d = deferred()
    path = write_deferred(tmp_path, AS_OF, REPO, d)
    assert path == staging.deferred_file(tmp_path, AS_OF, REPO)
    got, digest = read_deferred(path, REPO)
    assert got == d and digest == staging.digest(path.read_bytes())
    assert "payload" not in got.statuses[0].known[0], "only the fields the lookup checks are staged"
    assert datetime.fromisoformat(got.guard.since) == SINCE, "since exactly: the guard's window is not rounded"
    assert got.links.commits == ({"sha": "a" * 40, "date": "2026-11-24T09:00:00Z"},)


@pytest.mark.parametrize("change, why", [
    (lambda doc: doc.update(repo="acme/other"), "names 'acme/other'"),
    (lambda doc: doc.pop("links"), "links"),
    (lambda doc: doc["guard"].update(since="yesterday"), "isoformat|Invalid"),
    (lambda doc: doc["statuses"][0].update(ids=["x"]), "invalid literal"),
])
def test_a_malformed_or_foreign_batches_file_is_refused_naming_it(tmp_path, change, why):
    path = write_deferred(tmp_path, AS_OF, REPO, deferred())
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(StageError, match=rf"acme__payments-api.batches.json: not the batches file of {REPO} .*({why})"):
        read_deferred(path, REPO)


def test_a_missing_batches_file_names_the_repository_to_fetch_again(tmp_path):
    with pytest.raises(StageError, match=rf"missing: the fetch of {REPO} did not complete .*github_batches"):
        read_deferred(staging.deferred_file(tmp_path, AS_OF, REPO), REPO)


def test_a_batches_file_of_another_production_branch_is_refused(tmp_path):
    """The config's production branch changed between the repository's fetch and the batches: its
    commits are another branch's line, and the lag guard would count merges into the wrong base.
    Nothing is asked: the repository must be fetched again under the config in force."""
    path = write_deferred(tmp_path, AS_OF, REPO, deferred())  # fetched for "main"
    assert read_deferred(path, REPO, "main")[0] == deferred()
    with pytest.raises(StageError, match=rf"batches.json: fetched for branch main of {REPO}, the config's "
                                         r"production branch is now release: rerun the fetch of acme/payments-api"):
        read_deferred(path, REPO, "release")
