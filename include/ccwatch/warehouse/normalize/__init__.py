"""Raw API payloads -> rows of the normalised tables (pure functions): ``batch.normalize_batch``
dispatches each raw kind to its normaliser (``github``, ``graphql``, ``protection``, ``jira``)."""
