"""The exceptions register (CONTROLS.md "Exceptions (r2)"; docs/EXCEPTIONS.md): the YAML file of
accepted risks named by the config key ``exceptions``, parsed and checked on its own.

``load_register(path)`` reads the file and returns a :class:`Register` (its bytes, SHA-256 and
entries, in file order), or raises :class:`RegisterError` (a ``ConfigError``) naming the file,
the entry (``entry [i]``, 0-based as in the config's dotted keys, and its id when it has a usable
one) and the key, e.g. ``include/config/exceptions.yaml: entry [2] (id EX-3): expires: not a date
or time``.  Everything that can be checked without the warehouse is checked here: the shape,
unknown and missing keys, types, id format and uniqueness, control ids against the catalogue and
their scope (a change control names a ``change_id``, a repository control a ``repo``), change id
and repository formats, dates.  Whether an entry *applies* on a run date (approver, author,
validity window, the change existing) depends on the warehouse and the as-of time:
``controls.exceptions`` decides that.

Times: a date (``2026-11-04``) is 00:00 UTC of that day; a time must carry its zone (``Z`` or
``+02:00``).  They are returned as naive UTC, as the warehouse stores times.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccwatch.config_schema import ConfigError, UniqueKeyLoader, read_yaml
from ccwatch.controls.catalogue import CONTROL_IDS, control_entry
from ccwatch.settings import PROJECT_ROOT, Settings

#: the keys of an entry, in the order the docs and exceptions.csv list them
ENTRY_KEYS = ("id", "change_id", "repo", "control_id", "justification", "approved_by", "approved_at", "expires")
_REQUIRED = ("id", "control_id", "justification", "approved_by", "approved_at", "expires")
_TEXT = ("id", "change_id", "repo", "control_id", "justification", "approved_by")
#: an id is safe in a CSV cell, an HTML attribute, a Slack line and a file name: letters and digits
#: first, then letters, digits, ``.``, ``_``, ``:``, ``-``; at most 64 characters
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_REPO = r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"
REPO_PATTERN = re.compile(_REPO)
CHANGE_PATTERN = re.compile(rf"{_REPO}(#[0-9]+|@[0-9a-fA-F]{{40}})")


class RegisterError(ConfigError):
    """The exceptions register is unusable; the message names the file, the entry and the key."""


@dataclass(frozen=True)
class Entry:
    """One accepted risk: exactly one of ``change_id`` / ``repo`` is set; times are naive UTC."""

    index: int
    id: str
    control_id: str
    justification: str
    approved_by: str
    approved_at: datetime
    expires: datetime
    change_id: str | None = None
    repo: str | None = None

    @property
    def target(self) -> str:
        """The ``change_id`` of the control_results row it names (a repository row's is the repository)."""
        return self.change_id or self.repo or ""


@dataclass(frozen=True)
class Register:
    path: str  # the file as resolved (absolute)
    sha256: str  # of ``content``
    content: bytes  # the exact bytes evaluated (they travel as config/exceptions.yaml in the evidence)
    entries: tuple[Entry, ...]


class _Loader(UniqueKeyLoader):
    """Duplicate keys are errors (UniqueKeyLoader); timestamps stay text so a bad date is reported
    with its entry and key instead of failing inside the YAML parser."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def register_label(path: str | Path) -> str:
    """How messages, POLICY.md and the report name the file: relative to the project root when
    inside it (as the config key is usually written), else as given."""
    p = Path(path)
    try:
        return p.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(p)


def configured_register(settings: Settings) -> Register | None:
    """The register the config names (``exceptions``), loaded; None when the key is absent."""
    return load_register(settings.exceptions) if settings.exceptions else None


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)  # shortened: a misplaced secret or a whole paragraph must not be echoed
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:30] + '...'}"


def _time(value: Any) -> datetime:
    """A register time as naive UTC; raises ValueError with the reason."""
    if not isinstance(value, str):
        raise ValueError(f"must be a date (YYYY-MM-DD) or a time with its zone (2026-11-04T09:00:00Z), "
                         f"got {_describe(value)}")
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date or time (YYYY-MM-DD, or 2026-11-04T09:00:00Z): {_describe(value)}") from None
    if dt.tzinfo is None:
        if len(text) != 10:  # YYYY-MM-DD alone is a day: 00:00 UTC; a time of day must say its zone
            raise ValueError(f"a time needs a time zone (Z or +hh:mm): {_describe(value)}")
        return dt
    return dt.astimezone(UTC).replace(tzinfo=None)


def load_register(path: str | Path) -> Register:
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise RegisterError(f"{where}: exceptions register not found (config key exceptions)")
    if not p.is_file():
        raise RegisterError(f"{where}: not a file (config key exceptions names the register file)")
    content, doc = read_yaml(p, where, "the exceptions register", _Loader, RegisterError)
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise RegisterError(f"{where}: the register must be a list of entries, got {_describe(doc)}")
    entries: list[Entry] = []
    seen: dict[str, tuple[int, str]] = {}
    for i, item in enumerate(doc):
        e = _entry(where, i, item)
        first = seen.get(e.id.lower())
        if first is not None:
            raise RegisterError(f"{where}: entry [{i}] (id {e.id}): id: duplicate id: entry [{first[0]}] has id "
                                f"{first[1]} (ids are compared ignoring case)")
        seen[e.id.lower()] = (i, e.id)
        entries.append(e)
    return Register(path=str(p.resolve()), sha256=hashlib.sha256(content).hexdigest(), content=content,
                    entries=tuple(entries))


def _entry(where: str, i: int, item: Any) -> Entry:
    label = f"entry [{i}]"
    if not isinstance(item, dict):
        raise RegisterError(f"{where}: {label}: must be a mapping of keys ({', '.join(ENTRY_KEYS)}), "
                            f"got {_describe(item)}")
    raw_id = item.get("id")
    if isinstance(raw_id, str) and ID_PATTERN.fullmatch(raw_id):
        label = f"{label} (id {raw_id})"

    def fail(key: str, msg: str) -> RegisterError:
        return RegisterError(f"{where}: {label}: {key}: {msg}")

    for k in item:
        if not isinstance(k, str) or k not in ENTRY_KEYS:
            raise fail(str(k), f"unknown key (allowed: {', '.join(ENTRY_KEYS)})")
    for k in _REQUIRED:
        if item.get(k) is None:
            raise fail(k, "required key is missing")
    for k in _TEXT:
        v = item.get(k)
        if v is None:
            continue
        if not isinstance(v, str):
            raise fail(k, f"must be a string, got {_describe(v)}")
        if not v.strip():
            raise fail(k, "must not be blank")
    if not ID_PATTERN.fullmatch(item["id"]):
        raise fail("id", f"must be letters and digits, then letters, digits, '.', '_', ':' or '-', at most 64 "
                         f"characters (it appears in CSV, HTML and Slack), got {_describe(item['id'])}")
    change_id, repo = item.get("change_id"), item.get("repo")
    if (change_id is None) == (repo is None):
        raise fail("change_id/repo", "give exactly one: change_id for a change's control, repo for a repository "
                                     f"control; got {'both' if change_id is not None else 'neither'}")
    control_id = item["control_id"].strip()
    if control_id not in CONTROL_IDS:
        raise fail("control_id", f"unknown control {control_id!r} (known: {', '.join(CONTROL_IDS)})")
    scope = control_entry(control_id).scope
    if scope == "repo" and change_id is not None:
        raise fail("control_id", f"{control_id} is a repository control: name the repository with repo, not change_id")
    if scope == "change" and repo is not None:
        raise fail("control_id", f"{control_id} is a change control: name the change with change_id, not repo")
    if change_id is not None and not CHANGE_PATTERN.fullmatch(change_id.strip()):
        raise fail("change_id", "not a change id (owner/repo#number for a pull request, owner/repo@<40-hex sha> for "
                                f"a direct push), got {_describe(change_id)}")
    if repo is not None and not REPO_PATTERN.fullmatch(repo.strip()):
        raise fail("repo", f"not a repository (owner/name), got {_describe(repo)}")
    times = {}
    for k in ("approved_at", "expires"):
        try:
            times[k] = _time(item[k])
        except ValueError as exc:
            raise fail(k, str(exc)) from None
    return Entry(index=i, id=item["id"], control_id=control_id, justification=item["justification"].strip(),
                 approved_by=item["approved_by"].strip(), approved_at=times["approved_at"], expires=times["expires"],
                 change_id=change_id.strip() if change_id is not None else None,
                 repo=repo.strip() if repo is not None else None)
