"""The one error a source fetch raises."""


class SourceError(RuntimeError):
    """Fetching a source failed; the message names the repo/project and the endpoint, never a token."""
