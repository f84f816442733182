"""The GraphQL documents ccwatch sends to GitHub (``POST /graphql``; Enterprise ``/api/graphql``).

Shared by the connector (:mod:`ccwatch.ingest.github.graphql`) and the API double
(:mod:`ccwatch.sandbox.github_graphql`, which executes them over GitHub's published schema).
Each selects the evidence the REST connector stores, so the GraphQL raw kinds normalise into the
same warehouse rows (docs/ARCHITECTURE.md, "GraphQL raw kinds").  Every document validates
against GitHub's published schema (the cut in ``sandbox/github_schema/github.graphql``;
tests/unit/ingest/github/test_queries.py).

Ids (issue #12).  GraphQL ``Int`` is 32-bit signed; review, check-run, deployment, PR and user
ids on github.com are past 2**31, and GitHub deprecated ``PullRequest.databaseId`` and
``PullRequestReview.databaseId`` because they "do not support 64-bit signed integer
identifiers".  So no document selects an ``Int`` that can hold a REST id:

* ``PullRequest``, ``PullRequestReview``: ``fullDatabaseId`` (``BigInt``, a string), the REST
  ``id``: REST and GraphQL review rows get the same ``review_id``;
* ``CheckRun``, ``CheckSuite``, ``Deployment``, actors (no ``fullDatabaseId`` in the schema):
  the opaque node ``id`` (and a check run's ``url``, REST's ``html_url``); the normaliser derives
  a check run's key from its node id (``warehouse/normalize/graphql.derived_id``), and a
  deployment node is matched to its REST deployment by position and checked on
  ``commitOid``/``environment``/``createdAt``;
* the one ``Int`` id kept on purpose is ``App.databaseId`` (a check suite's app): it is the App id
  that classic protection's ``checks[].app_id`` and rulesets' ``integration_id`` name, the schema
  has no 64-bit alternative, and App ids are small (GitHub Actions: 15368).

Also selected for contract revision 2 (stored in the raw nodes, see docs/ARCHITECTURE.md): each
check suite's ``app { id databaseId slug }``, each status context's ``creator`` (an app posts as
its ``Bot``), the PR's ``AddedToMergeQueueEvent``s (``actor``, ``enqueuer``), and
``CcwatchMergedCount`` (search ``issueCount``) for reconciling the merged-PR population.

Page sizes keep every query well under GitHub's node limit (500,000) and its point cost small.
GitHub's rule ("Rate limits and query limits for the GraphQL API"): add up the requests each
connection needs if every ``first``/``last`` were filled (a nested connection once per parent
node), divide by 100, round, minimum 1.  A page of 50 PRs: 1 + 50 x (labels, reviews,
timelineItems, commits, checkSuites) + 50 x 5 suites (checkRuns) = 501 requests = 5 points
(revision 1's 451 requests were also 5 points); 100 commits of history: 1 + 100 x (parents,
associatedPullRequests) = 201 requests = 2 points; 50 deployments: 50 requests = 1 point; the
count: 1 point.  A 100,000-PR, 500-repository backfill measured 16,219 points in all with the same
per-page costs (PR pages ~11,000, the rest history and deployment-status queries), about 3.2 hours
of a token's 5,000 points an hour (docs/PERFORMANCE.md).  Most commits carry one to three check
suites (one per GitHub App); more overflow to REST.  Connections that may overflow report
``pageInfo.hasNextPage``: the connector then fetches that piece of that PR through REST, never
truncates it.
"""

# ruff: noqa: UP031  (%-formatting: the documents are full of GraphQL braces str.format would need doubled)
PULLS_PAGE = 50        # PRs per page
REVIEWS_PAGE = 50      # reviews per PR
SUITES_PAGE = 5        # check suites on the head commit (one per app; the point cost's biggest factor)
RUNS_PAGE = 50         # check runs per suite (filterBy: ALL, i.e. re-runs included)
LABELS_PAGE = 20
QUEUE_EVENTS = 5       # the last AddedToMergeQueueEvents of a PR (the last one queued the merge)
HISTORY_PAGE = 100     # commits of the production branch per page
DEPLOYMENT_NODES = 50  # deployments per nodes(ids:) lookup
DEPLOYMENT_STATUSES_PAGE = 50
ASSOCIATED_PULLS = 5   # associatedPullRequests per commit (pageInfo says when there are more)
# GitHub documents first/last between 1 and 100 (the schema's Int would allow 0): the count asks
# for one node and selects none of them
COUNT_PAGE = 1

RATE_LIMIT = "rateLimit { cost limit remaining used resetAt }"
# an actor: its type and login always, its node id (every Actor is a Node); never databaseId (Int)
ACTOR = "__typename login ... on Node { id }"

# The fields of one merged PR, the same in the per-repository page and the org-wide search (issue #15)
PULL_FIELDS = """        id fullDatabaseId number title url state createdAt updatedAt mergedAt closedAt
        baseRefName headRefName headRefOid
        author { %(actor)s }
        mergedBy { %(actor)s }
        mergeCommit { oid }
        labels(first: %(labels)d) { pageInfo { hasNextPage } nodes { name } }
        reviews(first: %(reviews)d) {
          pageInfo { hasNextPage endCursor }
          nodes { id fullDatabaseId state submittedAt author { %(actor)s } commit { oid } }
        }
        timelineItems(itemTypes: [ADDED_TO_MERGE_QUEUE_EVENT], last: %(queue)d) {
          pageInfo { hasPreviousPage }
          nodes {
            ... on AddedToMergeQueueEvent { id createdAt actor { %(actor)s } enqueuer { login id } }
          }
        }
        commits(last: 1) {
          nodes {
            commit {
              oid
              checkSuites(first: %(suites)d) {
                pageInfo { hasNextPage }
                nodes {
                  id
                  app { id databaseId slug }
                  checkRuns(first: %(runs)d, filterBy: {checkType: ALL}) {
                    pageInfo { hasNextPage }
                    nodes { id url detailsUrl name status conclusion startedAt completedAt }
                  }
                }
              }
              status { contexts { id context state createdAt targetUrl creator { %(actor)s } } }
            }
          }
        }
      """ % {"actor": ACTOR, "labels": LABELS_PAGE, "reviews": REVIEWS_PAGE,
                          "queue": QUEUE_EVENTS, "suites": SUITES_PAGE, "runs": RUNS_PAGE}

MERGED_PULLS = """
query CcwatchMergedPulls($owner: String!, $name: String!, $base: String!, $first: Int!, $after: String) {
  %(rate)s
  repository(owner: $owner, name: $name) {
    pullRequests(baseRefName: $base, states: [MERGED], orderBy: {field: UPDATED_AT, direction: DESC},
                 first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
%(pull)s
      }
    }
  }
}
""" % {"rate": RATE_LIMIT, "pull": PULL_FIELDS}

# (issue #15) The night's merged PRs of one owner across its repositories: GitHub search, q =
# pulls_search_query(...), e.g. "org:acme is:pr is:merged updated:>=2026-11-23T00:00:00+00:00
# merged:2026-08-27T00:00:00+00:00..2026-11-25T00:00:00+00:00 sort:updated-desc".  The same PR fields
# as CcwatchMergedPulls (the raw gql_pull node is the same), the same cost: 5 points per 50 PRs.
# Search answers at most SEARCH_CAP results whatever issueCount says (ingest/github/discovery.py).
SEARCH_CAP = 1000
PULLS_SEARCH = """
query CcwatchMergedPullsSearch($q: String!, $first: Int!, $after: String) {
  %(rate)s
  search(type: ISSUE, query: $q, first: $first, after: $after) {
    issueCount
    pageInfo { hasNextPage endCursor }
    nodes {
      ... on PullRequest {
%(pull)s
      }
    }
  }
}
""" % {"rate": RATE_LIMIT, "pull": PULL_FIELDS}

# The first-parent history page of a branch, the same in the per-repository query and the batch
HISTORY_FIELDS = """history(first: $first, after: $after%(n)s, since: $since%(n)s) {
            pageInfo { hasNextPage endCursor }
            nodes {
              oid committedDate
              parents(first: 1) { nodes { oid } }
              associatedPullRequests(first: %(assoc)d) {
                pageInfo { hasNextPage }
                nodes { number fullDatabaseId baseRefName mergedAt }
              }
            }
          }"""

BRANCH_HISTORY = """
query CcwatchBranchHistory($owner: String!, $name: String!, $qualifiedName: String!, $since: GitTimestamp,
                           $first: Int!, $after: String) {
  %(rate)s
  repository(owner: $owner, name: $name) {
    ref(qualifiedName: $qualifiedName) {
      target {
        ... on Commit {
          %(history)s
        }
      }
    }
  }
}
""" % {"rate": RATE_LIMIT, "history": HISTORY_FIELDS % {"n": "", "assoc": ASSOCIATED_PULLS}}

# (issue #15) ``CcwatchBranchHistories``: the history pages of up to HISTORY_REPOS repositories in
# one request, one aliased ``repository`` per repository (``r0``, ``r1`` ...) with its own owner,
# name, branch, since and cursor ($o0, $n0, $q0, $since0, $after0 ...).  Cost: each repository's
# page costs what the per-repository query's does.
HISTORY_REPOS = 20


def branch_histories_document(n: int) -> str:
    """``CcwatchBranchHistories`` for ``n`` repositories (answer keys ``r0 ..``)."""
    if not 1 <= n <= HISTORY_REPOS:
        raise ValueError(f"{n} repositories in one CcwatchBranchHistories: 1 to {HISTORY_REPOS}")
    params = ", ".join(f"$o{i}: String!, $n{i}: String!, $q{i}: String!, $since{i}: GitTimestamp, $after{i}: String"
                       for i in range(n))
    fields = "\n".join(
        f"  r{i}: repository(owner: $o{i}, name: $n{i}) {{\n    ref(qualifiedName: $q{i}) {{\n      target {{\n"
        f"        ... on Commit {{\n          {HISTORY_FIELDS % {'n': i, 'assoc': ASSOCIATED_PULLS}}\n"
        f"        }}\n      }}\n    }}\n  }}" for i in range(n))
    return f"query CcwatchBranchHistories($first: Int!, {params}) {{\n  {RATE_LIMIT}\n{fields}\n}}\n"

# Deployment has no fullDatabaseId and its databaseId is a 32-bit Int: the connector matches each
# node to its REST deployment by position in nodes(ids:) and checks commitOid/environment/createdAt
# (node ids are opaque, and GitHub may answer a newer id format than the one it was asked for).
DEPLOYMENT_STATUSES = """
query CcwatchDeploymentStatuses($ids: [ID!]!, $first: Int!) {
  %(rate)s
  nodes(ids: $ids) {
    ... on Deployment {
      id commitOid environment createdAt
      statuses(first: $first) {
        pageInfo { hasNextPage }
        nodes { id state description environmentUrl logUrl createdAt updatedAt creator { %(actor)s } }
      }
    }
  }
}
""" % {"rate": RATE_LIMIT, "actor": ACTOR}

# The number of merged PRs GitHub's search finds (results stop at 1,000; issueCount does not), for
# q = merged_count_query(...), e.g. "repo:o/r is:pr is:merged base:main merged:2026-08-27..2026-11-25".
MERGED_COUNT = """
query CcwatchMergedCount($q: String!) {
  %(rate)s
  search(type: ISSUE, query: $q, first: %(page)d) { issueCount }
}
""" % {"rate": RATE_LIMIT, "page": COUNT_PAGE}

# The same counts for many repositories in one request (``ingest.github.counts``): one aliased
# ``search`` per repository (``c0``, ``c1`` ...), each with its own search string.  Cost: one
# connection request per search (first: 1), so 50 searches are 50 requests = 1 point.
COUNTS_BATCH = 50


def merged_counts_document(n: int) -> str:
    """``CcwatchMergedCounts`` for ``n`` search strings ``$q0 .. $q{n-1}`` (answer keys ``c0 ..``)."""
    if not 1 <= n <= COUNTS_BATCH:
        raise ValueError(f"{n} searches in one CcwatchMergedCounts: 1 to {COUNTS_BATCH}")
    params = ", ".join(f"$q{i}: String!" for i in range(n))
    fields = "\n".join(f"  c{i}: search(type: ISSUE, query: $q{i}, first: {COUNT_PAGE}) {{ issueCount }}"
                       for i in range(n))
    return f"query CcwatchMergedCounts({params}) {{\n  {RATE_LIMIT}\n{fields}\n}}\n"


# (issue #15) A repository's settings, the evidence REST's ``GET /repos/{o}/{r}`` used to give
# (``repo.json``): asked for every repository at once before their fetches
# (``ingest.github.repositories``), because REST answers 200 to every repository a push moved
# (``pushed_at``), one counted request each a night.  The node id, never ``databaseId`` (Int).
# No connection: 1 point a request, however many repositories it names.
# (issue #15, stop 31) With them, the production branch's tip (``productionBranch``, the ref named by
# ``$qualifiedName`` / ``$q0`` ...): the REST ``GET /branches/{b}`` that gave it answers 200 whenever
# the branch moved.  A ref points to a commit (the cut's ``GitObject`` has no ``oid``).  And what REST's
# ``"protected"`` flag says, which the protection skip reads (``$protection`` / ``$p0`` ... true; false
# only when GitHub refused it, ``repositories._query``): a classic rule for the ref
# (``branchProtectionRule``, which needs the Administration permission, as REST's protection does)
# or rules of active rulesets (``rules``: 50 counts a request, still 1 point).
REPOSITORY_FIELDS = """id nameWithOwner url visibility isPrivate isFork isTemplate isArchived archivedAt isDisabled
    isLocked defaultBranchRef { name } mergeCommitAllowed squashMergeAllowed rebaseMergeAllowed
    autoMergeAllowed deleteBranchOnMerge webCommitSignoffRequired viewerPermission createdAt updatedAt pushedAt
    productionBranch: ref(qualifiedName: %(q)s) {
      name target { ... on Commit { oid } }
      branchProtectionRule @include(if: %(p)s) { id } rules(first: 1) @include(if: %(p)s) { totalCount }
    }"""

REPOSITORY = """
query CcwatchRepository($owner: String!, $name: String!, $qualifiedName: String!, $protection: Boolean!) {
  %(rate)s
  repository(owner: $owner, name: $name) { %(fields)s }
}
""" % {"rate": RATE_LIMIT, "fields": REPOSITORY_FIELDS % {"q": "$qualifiedName", "p": "$protection"}}

# The same for many repositories in one request: one aliased ``repository`` each (``r0``, ``r1`` ...)
REPOSITORIES_BATCH = 50


def repositories_document(n: int) -> str:
    """``CcwatchRepositories`` for ``n`` repositories ``($o0, $n0, $q0, $p0) .. `` (answer keys ``r0 ..``;
    ``$q0``: the production branch's qualified name, ``refs/heads/<branch>``; ``$p0``: ask its protection flag)."""
    if not 1 <= n <= REPOSITORIES_BATCH:
        raise ValueError(f"{n} repositories in one CcwatchRepositories: 1 to {REPOSITORIES_BATCH}")
    params = ", ".join(f"$o{i}: String!, $n{i}: String!, $q{i}: String!, $p{i}: Boolean!" for i in range(n))
    fields = "\n".join(f"  r{i}: repository(owner: $o{i}, name: $n{i}) {{ "
                       f"{REPOSITORY_FIELDS % {'q': f'$q{i}', 'p': f'$p{i}'}} }}" for i in range(n))
    return f"query CcwatchRepositories({params}) {{\n  {RATE_LIMIT}\n{fields}\n}}\n"


OPERATIONS = {"CcwatchMergedPulls": MERGED_PULLS, "CcwatchBranchHistory": BRANCH_HISTORY,
              "CcwatchDeploymentStatuses": DEPLOYMENT_STATUSES, "CcwatchMergedCount": MERGED_COUNT,
              "CcwatchMergedPullsSearch": PULLS_SEARCH, "CcwatchRepository": REPOSITORY}


def search_time(t) -> str:
    """A tz-aware time in GitHub search's date-time form ``YYYY-MM-DDTHH:MM:SS+00:00`` ("Understanding
    the search syntax": a date, ``T``, the time and a UTC offset), for ``merged_count_query``."""
    from datetime import UTC

    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def merged_count_query(repo: str, base: str, merged_from: str, merged_to: str) -> str:
    """The ``CcwatchMergedCount`` search string: PRs of ``repo`` merged into ``base`` between two
    dates or ISO-8601 times (GitHub's ``merged:FROM..TO`` qualifier, both ends inclusive)."""
    return f"repo:{repo} is:pr is:merged base:{base} merged:{merged_from}..{merged_to}"


def pulls_search_query(owner: str, updated_from: str, merged_from: str, merged_to: str) -> str:
    """The ``CcwatchMergedPullsSearch`` search string: ``owner``'s PRs merged between two times and
    updated since one (GitHub's ``org:``, ``is:``, ``updated:>=``, ``merged:FROM..TO`` and
    ``sort:updated-desc`` qualifiers; times as ``search_time``)."""
    return f"org:{owner} is:pr is:merged updated:>={updated_from} merged:{merged_from}..{merged_to} sort:updated-desc"
