"""Which entries of the exceptions register apply on a run date, and applying them
(CONTROLS.md "Exceptions (r2)"; docs/EXCEPTIONS.md).

An entry (``controls.register``) applies when every rule holds, judged from the warehouse and the
run's as-of time T only (never the wall clock):

==================  ==========================================================================
reason (in order)   the rule it breaks
==================  ==========================================================================
no_such_change      the change is in this run's population (``change_facts``)
no_such_repo        the repository is configured (``github.repositories``)
unknown_approver    ``approved_by`` is a change approver (``people.change_approvers``)
self_approved       ``approved_by`` is not the change's author
too_long            ``expires`` is at most one calendar year after ``approved_at``
not_yet_approved    ``approved_at`` <= T
expired             T < ``expires``
==================  ==========================================================================

People are compared as the facts compare them (``warehouse/facts.py``'s ``pkey``): a login or
Jira identity listed in ``people.identities`` is that person, case and surrounding blanks
ignored.  An invalid entry's ``reason`` is the first rule it breaks in that order; its ``detail``
names every rule it breaks.  A valid entry *applies* to the row it names when that row's status is
``fail``: the row stays ``fail`` and ``control_results.exception`` carries the entry's id.  A
``pass``, ``pending`` or ``not_applicable`` row never carries an id.  When several valid entries
name the same row, the one approved last applies (then the later in the file); the others are
valid but not applied, and say so.

``apply_exceptions`` runs inside the transaction that replaces the date's control_results
(``pipeline.evaluate_controls``): it replaces the date's rows of ``exceptions`` (every entry with
its validity) and ``exception_registers`` (the file's bytes), and sets the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from ccwatch.common.times import minute_z, naive_utc
from ccwatch.controls.register import Entry, Register
from ccwatch.settings import Settings

REASONS = ("no_such_change", "no_such_repo", "unknown_approver", "self_approved", "too_long",
           "not_yet_approved", "expired")
VALID, INVALID = "valid", "invalid"


@dataclass(frozen=True)
class Verdict:
    entry: Entry
    status: str  # valid | invalid
    reason: str | None  # invalid: the first rule broken (REASONS order)
    detail: str  # one line
    result_status: str | None  # the status of the row the entry names on this date (None: no row)
    applied: bool  # that row is fail and carries entry.id


def person_keys(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, str]:
    """identity (lower case) -> person, from the warehouse's ``people`` and the config's
    ``people.identities``: the facts' ``_ident`` table."""
    rows = con.execute("SELECT person, github, jira FROM people").fetchall()
    rows += [(i.name, i.github, i.jira) for i in settings.people.identities]
    out: dict[str, str] = {}
    for person, *idents in rows:
        for x in idents:
            if x is not None and x.strip():
                key = x.lower()
                out[key] = min(out.get(key, person), person)
    return out


def person_key(x: str | None, keys: dict[str, str]) -> str | None:
    """The facts' ``pkey(x)``: ``p:<person>`` for a known identity, else ``x:<identity>``."""
    if x is None or not x.strip():
        return None
    ident = x.strip().lower()
    return f"p:{keys[ident]}" if ident in keys else f"x:{ident}"


def one_year_after(t: datetime) -> datetime:
    """The same moment one calendar year later (29 February -> 28 February)."""
    try:
        return t.replace(year=t.year + 1)
    except ValueError:
        return t.replace(year=t.year + 1, day=28)


def _targets(con: duckdb.DuckDBPyConnection, t: datetime, entries: list[Entry]):
    """(change id lower -> (change_id, author) of the population, {(target lower, control): status})."""
    wanted = sorted({e.target.lower() for e in entries})
    changes = {r[0].lower(): (r[0], r[1]) for r in con.execute(
        "SELECT change_id, author FROM change_facts WHERE lower(change_id) IN (SELECT unnest(?::VARCHAR[]))",
        [wanted]).fetchall()}
    statuses = {(c.lower(), k): s for c, k, s in con.execute(
        "SELECT change_id, control_id, status FROM control_results WHERE CAST(as_of AS DATE) = CAST(? AS DATE) "
        "AND lower(change_id) IN (SELECT unnest(?::VARCHAR[]))", [t, wanted]).fetchall()}
    return changes, statuses


def judge(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime,
          entries: list[Entry] | tuple[Entry, ...]) -> list[Verdict]:
    """The verdict of every entry (in the given order) as of ``as_of``, against the population
    (``change_facts``) and the date's control_results rows."""
    t = naive_utc(as_of)
    entries = list(entries)
    if not entries:
        return []
    keys = person_keys(con, settings)
    approvers = {person_key(x, keys) for x in settings.people.change_approvers} - {None}
    repos = {r.repo.lower() for r in settings.github.repositories}
    changes, statuses = _targets(con, t, entries)
    broken: list[list[tuple[str, str]]] = []
    for e in entries:
        b: list[tuple[str, str]] = []
        who = person_key(e.approved_by, keys)
        author = None
        if e.change_id is not None:
            found = changes.get(e.change_id.lower())
            if found is None:
                b.append(("no_such_change", f"{e.change_id} is not in this run's population (changes merged or "
                                            f"pushed into a production branch in the lookback window as of "
                                            f"{minute_z(t)})"))
            else:
                author = found[1]
        elif e.repo.lower() not in repos:
            b.append(("no_such_repo", f"{e.repo} is not a configured repository (github.repositories)"))
        if who not in approvers:
            b.append(("unknown_approver", f"approved_by {e.approved_by} is not a change approver "
                                          "(people.change_approvers, compared through people.identities)"))
        if author is not None and who is not None and who == person_key(author, keys):
            person = f" ({who[2:]})" if who.startswith("p:") else ""
            b.append(("self_approved", f"approved_by {e.approved_by} is the change's author {author}{person}"))
        limit = one_year_after(e.approved_at)
        if e.expires > limit:
            b.append(("too_long", f"expires {minute_z(e.expires)} is more than one year after approved_at "
                                  f"{minute_z(e.approved_at)} (latest allowed {minute_z(limit)})"))
        if e.approved_at > t:
            b.append(("not_yet_approved", f"approved_at {minute_z(e.approved_at)} is after the as-of time "
                                          f"{minute_z(t)}"))
        if t >= e.expires:
            b.append(("expired", f"expired at {minute_z(e.expires)}, at or before the as-of time {minute_z(t)}"))
        broken.append(sorted(b, key=lambda x: REASONS.index(x[0])))

    # per row, the valid entry approved last (then the later in the file) is the one that applies
    winner: dict[tuple[str, str], Entry] = {}
    for e, b in zip(entries, broken, strict=True):
        if not b:
            k = (e.target.lower(), e.control_id)
            cur = winner.get(k)
            if cur is None or (e.approved_at, e.index) > (cur.approved_at, cur.index):
                winner[k] = e
    out = []
    for e, b in zip(entries, broken, strict=True):
        k = (e.target.lower(), e.control_id)
        status = statuses.get(k)
        what = f"{e.control_id} of {e.target}"
        if b:
            out.append(Verdict(e, INVALID, b[0][0], "; ".join(m for _, m in b), status, False))
        elif winner[k] is not e:
            out.append(Verdict(e, VALID, None, f"valid, but {winner[k].id} (approved later) covers the same row",
                               status, False))
        elif status == "fail":
            out.append(Verdict(e, VALID, None, f"applies: {what} fails; the row carries {e.id} until "
                                               f"{minute_z(e.expires)}", status, True))
        elif status is None:
            out.append(Verdict(e, VALID, None, f"valid, but {e.target} has no {e.control_id} result on this date",
                               status, False))
        else:
            out.append(Verdict(e, VALID, None, f"valid, nothing to except: {what} is {status} on this date",
                               status, False))
    return out


_COLUMNS = ("entry", "id", "change_id", "repo", "control_id", "justification", "approved_by", "approved_at",
            "expires", "status", "reason", "detail", "result_status", "applied")


def apply_exceptions(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime,
                     register: Register | None) -> dict[str, int]:
    """Judge the register as of ``as_of`` and record it for the date: ``control_results.exception``
    of the rows valid entries apply to, every entry in ``exceptions``, the file in
    ``exception_registers`` (each replacing the date's rows).  Call it inside the transaction that
    wrote the date's control_results; it opens none.  Returns counts (entries, valid, invalid, applied)."""
    t = naive_utc(as_of)
    for table in ("exceptions", "exception_registers"):
        con.execute(f"DELETE FROM {table} WHERE CAST(as_of AS DATE) = CAST(? AS DATE)", [t])
    con.execute("UPDATE control_results SET exception = NULL WHERE CAST(as_of AS DATE) = CAST(? AS DATE) "
                "AND exception IS NOT NULL", [t])
    if register is None:
        return {"entries": 0, "valid": 0, "invalid": 0, "applied": 0}
    verdicts = judge(con, settings, t, register.entries)
    if verdicts:
        frame = pd.DataFrame([(v.entry.index, v.entry.id, v.entry.change_id, v.entry.repo, v.entry.control_id,
                               v.entry.justification, v.entry.approved_by, v.entry.approved_at, v.entry.expires,
                               v.status, v.reason, v.detail, v.result_status, v.applied) for v in verdicts],
                             columns=list(_COLUMNS)).astype({"approved_at": "datetime64[us]",
                                                             "expires": "datetime64[us]"})
        con.register("_ccwatch_exceptions", frame)
        try:
            cols = ", ".join(_COLUMNS)
            con.execute(f"INSERT INTO exceptions (as_of, {cols}) SELECT ?::TIMESTAMP, {cols} "
                        "FROM _ccwatch_exceptions ORDER BY entry", [t])
            changed = con.execute(
                "UPDATE control_results SET exception = x.id FROM _ccwatch_exceptions x WHERE x.applied "
                "AND CAST(control_results.as_of AS DATE) = CAST(? AS DATE) "
                "AND lower(control_results.change_id) = lower(coalesce(x.change_id, x.repo)) "
                "AND control_results.control_id = x.control_id AND control_results.status = 'fail'", [t]
            ).fetchone()[0]
        finally:
            con.unregister("_ccwatch_exceptions")
        applied = sum(v.applied for v in verdicts)
        if changed != applied:  # one row per change and control: anything else is a bug, never a silent pass
            raise RuntimeError(f"exceptions: {applied} entries apply but {changed} control_results rows were marked")
    con.execute("INSERT INTO exception_registers VALUES (?, ?, ?, ?, ?)",
                [t, register.path, register.sha256, register.content, len(register.entries)])
    valid = sum(v.status == VALID for v in verdicts)
    return {"entries": len(verdicts), "valid": valid, "invalid": len(verdicts) - valid,
            "applied": sum(v.applied for v in verdicts)}
