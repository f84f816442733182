"""The GraphQL documents ccwatch sends validate against GitHub's published schema (the committed
cut) and select no field that cannot hold a real id: GraphQL ``Int`` is 32-bit signed, and review,
check-run, deployment and user ids are past 2**31 (issue #12)."""

from __future__ import annotations

import pytest
from ccwatch.ingest.github import queries as Q
from graphql import parse, validate
from graphql.validation import NoDeprecatedCustomRule

from tests.helpers.github_schema import ALLOWED_INT_IDS, cut_schema, int_fields, int_ids, revision1

OPS = sorted(Q.OPERATIONS)


def test_the_operations_and_their_names():
    assert OPS == ["CcwatchBranchHistory", "CcwatchDeploymentStatuses", "CcwatchMergedCount", "CcwatchMergedPulls",
                   "CcwatchMergedPullsSearch", "CcwatchRepository"]
    for name, text in Q.OPERATIONS.items():
        (op,) = parse(text).definitions
        assert (op.operation.value, op.name.value) == ("query", name)


@pytest.mark.parametrize("name", OPS)
def test_document_validates_against_the_published_schema(name):
    assert validate(cut_schema(), parse(Q.OPERATIONS[name])) == []


@pytest.mark.parametrize("name", OPS)
def test_document_selects_no_int_id_but_the_app_id(name):
    assert set(int_ids(cut_schema(), Q.OPERATIONS[name])) <= ALLOWED_INT_IDS


@pytest.mark.parametrize("name", OPS)
def test_document_selects_no_deprecated_field(name):
    assert validate(cut_schema(), parse(Q.OPERATIONS[name]), [NoDeprecatedCustomRule]) == []


def test_the_org_wide_repositories_document_validates_and_selects_no_int_id():
    """(issue #15) The batch built per request selects what ``CcwatchRepository`` does, 50 times."""
    doc = Q.repositories_document(Q.REPOSITORIES_BATCH)
    assert validate(cut_schema(), parse(doc), [NoDeprecatedCustomRule]) == []
    assert validate(cut_schema(), parse(doc)) == []
    assert int_ids(cut_schema(), doc) == []
    # (stop 31) the rules of the production branch are counted, never listed (the protection flag)
    assert int_fields(cut_schema(), doc) == ["RateLimit.cost", "RateLimit.limit", "RateLimit.remaining",
                                             "RateLimit.used"] + ["RepositoryRuleConnection.totalCount"] * 50


def test_the_remaining_int_fields_are_counts_not_ids():
    found = {f for text in Q.OPERATIONS.values() for f in int_fields(cut_schema(), text)}
    assert found == {"RateLimit.cost", "RateLimit.limit", "RateLimit.remaining", "RateLimit.used",
                     "PullRequest.number", "SearchResultItemConnection.issueCount", "App.databaseId",
                     "RepositoryRuleConnection.totalCount"}


def test_revision1_selected_int_ids_the_guards_catch():
    """The guards above are not vacuous: revision 1's documents fail both."""
    ids = set(int_ids(cut_schema(), revision1()))
    assert ids == {"PullRequest.databaseId", "User.databaseId", "Bot.databaseId", "PullRequestReview.databaseId",
                   "CheckRun.databaseId", "Deployment.databaseId"}
    deprecated = {e.message for e in validate(cut_schema(), parse(revision1()), [NoDeprecatedCustomRule])}
    assert deprecated == {
        "The field PullRequest.databaseId is deprecated. `databaseId` will be removed because it does not support "
        "64-bit signed integer identifiers. Use `fullDatabaseId` instead. Removal on 2024-07-01 UTC.",
        "The field PullRequestReview.databaseId is deprecated. `databaseId` will be removed because it does not "
        "support 64-bit signed integer identifiers. Use `fullDatabaseId` instead. Removal on 2024-07-01 UTC."}


def test_point_costs_in_the_module_doc():
    """The worked costs of queries.py's docstring are what GitHub's rule gives for these documents."""
    from ccwatch.sandbox.github_graphql_exec import document_cost

    assert document_cost(Q.MERGED_PULLS, {"first": Q.PULLS_PAGE}) == (5, 501)
    assert document_cost(Q.BRANCH_HISTORY, {"first": Q.HISTORY_PAGE}) == (2, 201)
    assert document_cost(Q.DEPLOYMENT_STATUSES, {"ids": ["x"] * Q.DEPLOYMENT_NODES,
                                                 "first": Q.DEPLOYMENT_STATUSES_PAGE}) == (1, 50)
    assert document_cost(Q.MERGED_COUNT, {"q": "x"}) == (1, 1)
    assert "= 501 requests = 5 points" in Q.__doc__


@pytest.mark.parametrize("n", [1, 7, Q.COUNTS_BATCH])
def test_the_batched_counts_document_validates_and_costs_one_point(n):
    """CcwatchMergedCounts (issue #15): one aliased search per repository, 50 for one point."""
    from ccwatch.sandbox.github_graphql_exec import document_cost

    doc = Q.merged_counts_document(n)
    assert validate(cut_schema(), parse(doc)) == []
    assert validate(cut_schema(), parse(doc), [NoDeprecatedCustomRule]) == []
    assert document_cost(doc, {f"q{i}": "x" for i in range(n)}) == (1, n)


@pytest.mark.parametrize("n", [0, Q.COUNTS_BATCH + 1])
def test_the_batched_counts_document_refuses_a_size_outside_the_batch(n):
    with pytest.raises(ValueError, match="CcwatchMergedCounts"):
        Q.merged_counts_document(n)


@pytest.mark.parametrize("n", [1, 3, Q.HISTORY_REPOS])
def test_the_batched_history_document_validates_selects_no_int_id_and_costs_what_the_pages_cost(n):
    """CcwatchBranchHistories (issue #15): one aliased repository per repository, each page what the
    per-repository CcwatchBranchHistory asks and costs (2 points, 201 requests a page)."""
    from ccwatch.sandbox.github_graphql_exec import document_cost

    doc = Q.branch_histories_document(n)
    assert validate(cut_schema(), parse(doc)) == []
    assert validate(cut_schema(), parse(doc), [NoDeprecatedCustomRule]) == []
    assert set(int_ids(cut_schema(), doc)) <= ALLOWED_INT_IDS
    assert doc.count("history(first: $first") == n and Q.BRANCH_HISTORY.count("history(first: $first") == 1
    _, requests = document_cost(doc, {"first": Q.HISTORY_PAGE})
    assert requests == n * document_cost(Q.BRANCH_HISTORY, {"first": Q.HISTORY_PAGE})[1]


@pytest.mark.parametrize("n", [0, Q.HISTORY_REPOS + 1])
def test_the_batched_history_document_refuses_a_size_outside_the_batch(n):
    with pytest.raises(ValueError, match="CcwatchBranchHistories"):
        Q.branch_histories_document(n)
