"""What every normaliser shares: the :class:`Context` lookup, natural keys, payload shapes, users.

Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ccwatch.ingest.records import RawRecord


class NormalizeError(ValueError):
    """A raw payload cannot be normalised (or the config cannot be applied to it)."""


Lookup = Callable[[str, str, str], Any]  # (source, kind, natural_key) -> payload | None


@dataclass
class Context:
    """Where a normaliser finds the records it depends on."""

    lookup: Lookup = lambda source, kind, key: None
    # status id or name -> statusCategory.key, from every issue payload the caller knows
    status_categories: dict[str, str] = field(default_factory=dict)


# --- natural keys ---------------------------------------------------------------


def split_key(natural_key: str, sep: str) -> tuple[str, str]:
    """'o/r#12' -> ('o/r', '12'); 'o/r@sha'; 'o/r:main'; 'o/r/deployments/9' (sep='/deployments/')."""
    if sep == ":":
        repo, _, rest = natural_key.partition(":")
    else:
        repo, _, rest = natural_key.rpartition(sep)
    if not repo or not rest:
        raise NormalizeError(f"malformed natural key {natural_key!r} (expected '<owner/repo>{sep}...')")
    return repo, rest


GHOST_LOGIN = "ghost"  # GitHub's stand-in for deleted accounts (id 10137): no one in particular


def user_login(user: Any) -> str | None:
    """A user's login; a deleted user (``null`` or the ``ghost`` account) is NULL, so two deleted
    users never compare equal (e.g. as author and approver of the same change)."""
    login = user.get("login") if isinstance(user, dict) else None
    return None if login == GHOST_LOGIN else login


def user_type(user: Any) -> str | None:
    return user.get("type") if isinstance(user, dict) and user_login(user) is not None else None


def payload_list(rec: RawRecord) -> list[dict[str, Any]]:
    if not isinstance(rec.payload, list):
        raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: payload is not a list")
    return rec.payload


def payload_dict(rec: RawRecord) -> dict[str, Any]:
    if not isinstance(rec.payload, dict):
        raise NormalizeError(f"{rec.source} {rec.kind} {rec.natural_key}: payload is not an object")
    return rec.payload
