"""GitHub fetch: ``fanout`` (one repository per worker / mapped task) -> ``fetch`` (one repository:
every raw kind) over ``client`` (REST) and ``graphql`` (batches of ``queries``), with
``conditional`` (ETags), ``history`` (first-parent line), ``pieces`` (what a GraphQL node holds
whole) and ``answers`` (rate limits, permissions)."""
