"""The one error a source fetch raises."""

from ccwatch.common.secrets import scrub


class SourceError(RuntimeError):
    """Fetching a source failed; the message names the repo/project and the endpoint, never a token.

    The message is scrubbed when the error is made: it often quotes an error body the server
    wrote, and a server may echo the request's ``Authorization`` header there."""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(scrub(str(message)), *args)
