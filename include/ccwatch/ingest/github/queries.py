"""The GraphQL documents ccwatch sends to GitHub (``POST /graphql``; Enterprise ``/api/graphql``).

Shared by the connector (:mod:`ccwatch.ingest.github.graphql`) and the API double
(:mod:`ccwatch.sandbox.github_graphql`), which recognises them by ``operationName``.
Each selects exactly the evidence the REST connector stores, so the GraphQL raw kinds
normalise into the same warehouse rows (docs/ARCHITECTURE.md, "GraphQL raw kinds").

Page sizes keep every query well under GitHub's node limit (500,000) and its point cost
small. GitHub's rule ("Rate limits and query limits for the GraphQL API"): add up the requests
each connection needs if every ``first``/``last`` were filled (a nested connection once per
parent node), divide by 100, round, minimum 1. A page of 50 PRs: 1 + 50 x (labels, reviews,
commits, checkSuites) + 50 x 5 suites (checkRuns) = 451 requests = 5 points. A 100,000-PR,
500-repository backfill measured 16,219 points in all (PR pages ~11,000, the rest history and
deployment-status queries), about 3.2 hours of a token's 5,000 points an hour (docs/PERFORMANCE.md).
Most commits carry one to three check suites (one per GitHub App); more overflow to REST.
Connections that may overflow report ``pageInfo.hasNextPage``: the connector then
fetches that piece of that PR through REST, never truncates it.
"""

# ruff: noqa: UP031  (%-formatting: the documents are full of GraphQL braces str.format would need doubled)
PULLS_PAGE = 50        # PRs per page
REVIEWS_PAGE = 50      # reviews per PR
SUITES_PAGE = 5        # check suites on the head commit (one per app; the point cost's biggest factor)
RUNS_PAGE = 50         # check runs per suite (filterBy: ALL, i.e. re-runs included)
LABELS_PAGE = 20
HISTORY_PAGE = 100     # commits of the production branch per page
DEPLOYMENT_NODES = 50  # deployments per nodes(ids:) lookup
DEPLOYMENT_STATUSES_PAGE = 50
ASSOCIATED_PULLS = 5   # associatedPullRequests per commit: five nodes may mean more exist (no pageInfo asked)

RATE_LIMIT = "rateLimit { cost limit remaining used resetAt }"

MERGED_PULLS = """
query CcwatchMergedPulls($owner: String!, $name: String!, $base: String!, $first: Int!, $after: String) {
  %(rate)s
  repository(owner: $owner, name: $name) {
    pullRequests(baseRefName: $base, states: [MERGED], orderBy: {field: UPDATED_AT, direction: DESC},
                 first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        databaseId number title url state createdAt updatedAt mergedAt closedAt
        baseRefName headRefName headRefOid
        author { __typename login ... on User { databaseId } ... on Bot { databaseId } }
        mergedBy { __typename login }
        mergeCommit { oid }
        labels(first: %(labels)d) { pageInfo { hasNextPage } nodes { name } }
        reviews(first: %(reviews)d) {
          pageInfo { hasNextPage endCursor }
          nodes { databaseId state submittedAt author { __typename login } commit { oid } }
        }
        commits(last: 1) {
          nodes {
            commit {
              oid
              checkSuites(first: %(suites)d) {
                pageInfo { hasNextPage }
                nodes {
                  app { slug }
                  checkRuns(first: %(runs)d, filterBy: {checkType: ALL}) {
                    pageInfo { hasNextPage }
                    nodes { databaseId name status conclusion startedAt completedAt }
                  }
                }
              }
              status { contexts { context state createdAt creator { login } } }
            }
          }
        }
      }
    }
  }
}
""" % {"rate": RATE_LIMIT, "labels": LABELS_PAGE, "reviews": REVIEWS_PAGE, "suites": SUITES_PAGE,
       "runs": RUNS_PAGE}

BRANCH_HISTORY = """
query CcwatchBranchHistory($owner: String!, $name: String!, $qualifiedName: String!, $since: GitTimestamp,
                           $first: Int!, $after: String) {
  %(rate)s
  repository(owner: $owner, name: $name) {
    ref(qualifiedName: $qualifiedName) {
      target {
        ... on Commit {
          history(first: $first, after: $after, since: $since) {
            pageInfo { hasNextPage endCursor }
            nodes {
              oid committedDate
              parents(first: 1) { nodes { oid } }
              associatedPullRequests(first: %(assoc)d) { nodes { number baseRefName mergedAt } }
            }
          }
        }
      }
    }
  }
}
""" % {"rate": RATE_LIMIT, "assoc": ASSOCIATED_PULLS}

DEPLOYMENT_STATUSES = """
query CcwatchDeploymentStatuses($ids: [ID!]!, $first: Int!) {
  %(rate)s
  nodes(ids: $ids) {
    ... on Deployment {
      id databaseId environment createdAt
      statuses(first: $first) {
        pageInfo { hasNextPage }
        nodes { id state description environmentUrl logUrl createdAt updatedAt creator { __typename login } }
      }
    }
  }
}
""" % {"rate": RATE_LIMIT}

OPERATIONS = {"CcwatchMergedPulls": MERGED_PULLS, "CcwatchBranchHistory": BRANCH_HISTORY,
              "CcwatchDeploymentStatuses": DEPLOYMENT_STATUSES}
