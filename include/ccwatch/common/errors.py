"""The error every stage raises when its input is missing or unusable (never a source error)."""


class StageError(RuntimeError):
    """A stage cannot run because an earlier stage's output is missing or unusable."""
