"""A reproducible auditor sample of the changes of a period (SOC 2 Type 2 testing).

**Population of the period** ``[date_from, date_to]`` (whole UTC days, both inclusive): every
change in the stored ``population`` (warehouse migration 3; one row per change and run)
whose ``merged_at`` (push time of a direct push) falls in the period.  Repository rows are
not changes and are never sampled.

**Results used**: for each change, its row of the latest run that evaluated it, and that run's
``control_results``: the most settled verdict (windows that were pending have closed). A
change merged on a day is first evaluated by a later run (the next night's), so a bound at
the period's end would miss the last day's changes: by default every stored run counts.
``through`` (normally a date after the period's end) limits the runs to those whose as-of date is on or
before it; the sample records the as-of date of the latest run considered as
``results_through``, so drawing again with ``through=<that date>`` gives the same population,
hash and sample whatever later nights add.  When no run considered is at or after the day
after the period's end, changes merged late in the period may not be evaluated yet: the
sample says so (``complete: false``).  A sampled change with a control still ``pending`` in the run
used (its window was open then) is drawn like any other and flagged (``pending`` in sample.json,
the note, the packet's index and its page): its verdict is not final.

**Draw**: the population sorted by ``change_id``; its **hash** is the SHA-256 of the UTF-8
lines ``<change_id>\\t<as_of>\\n`` in that order (``as_of`` = ``YYYY-MM-DDTHH:MM:SSZ`` of the run
used, i.e. exactly ``population.tsv`` of the packet); the sample is
``random.Random(seed).sample(sorted_ids, size)`` in draw order.  When ``size`` is at least the
population, every change is taken (sorted) and the sample says so.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from ccwatch.common.times import iso
from ccwatch.controls.catalogue import control_sort_key
from ccwatch.controls.families import CONTROLS
from ccwatch.warehouse.facts import POPULATION_COLUMNS
from ccwatch.warehouse.population import has_population_table

CHANGE_CONTROLS = tuple(c.id for c in CONTROLS if c.scope == "change")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


class SamplingError(ValueError):
    """The sample cannot be drawn as asked (bad dates, empty period, bad size); the message says why."""


@dataclass(frozen=True)
class Period:
    date_from: date
    date_to: date
    through: date  # as-of date of the latest run considered
    latest_run: datetime  # its as-of time
    changes: list[dict]  # population rows (+ 'as_of', 'results'), sorted by change_id

    @property
    def complete(self) -> bool:
        """Whether a run at or after the end of the period's last day was considered."""
        return self.latest_run >= datetime.combine(self.date_to + timedelta(days=1), datetime.min.time())

    @property
    def warning(self) -> str:
        if self.complete:
            return ""
        return (f"the latest run considered is as of {iso(self.latest_run)}, before the end of the period "
                f"({self.date_to}): changes merged after it are not evaluated yet and not in the population")

    @property
    def population_lines(self) -> str:
        return "".join(f"{c['change_id']}\t{iso(c['as_of'])}\n" for c in self.changes)

    @property
    def population_hash(self) -> str:
        return hashlib.sha256(self.population_lines.encode("utf-8")).hexdigest()

    @property
    def as_of_dates(self) -> list[str]:
        return sorted({iso(c["as_of"]) for c in self.changes})


@dataclass(frozen=True)
class Sample:
    period: Period
    seed: int
    size: int  # as requested
    changes: list[dict] = field(default_factory=list)  # the sampled rows, in draw order
    all_taken: bool = False

    @property
    def population_size(self) -> int:
        return len(self.period.changes)

    @property
    def pending(self) -> dict[str, list[str]]:
        """change_id -> its controls still ``pending`` in the run used (a window was open then), for
        the sampled changes whose verdict is not final; sorted by change_id."""
        out = {c["change_id"]: [k for k, (s, _) in c["results"].items() if s == "pending"] for c in self.changes}
        return {cid: ks for cid, ks in sorted(out.items()) if ks}

    @property
    def pending_note(self) -> str:
        n = len(self.pending)
        if not n:
            return ""
        return (f"{n} sampled change{'s are' if n != 1 else ' is'} still pending in the run used (a window was "
                f"open then; the verdict is not final): {', '.join(self.pending)}; draw again with a later "
                "'through' once their windows have closed, or test them as pending")

    @property
    def note(self) -> str:
        warn = f"; WARNING: {self.period.warning}" if self.period.warning else ""
        pending = f"; NOTE: {self.pending_note}" if self.pending_note else ""
        return self.drawn + warn + pending

    @property
    def drawn(self) -> str:
        if self.all_taken:
            return (f"the requested size {self.size} is not smaller than the population of "
                    f"{self.population_size}: every change of the period is taken")
        return f"{len(self.changes)} of {self.population_size} changes drawn with seed {self.seed}"

    def describe(self) -> dict:
        """What ``sample.json`` records (no wall clock, no path: the same draw gives the same bytes)."""
        p = self.period
        return {
            "period": {"from": p.date_from.isoformat(), "to": p.date_to.isoformat(),
                       "merged_at": "whole UTC days, both inclusive"},
            "results_through": p.through.isoformat(),
            "latest_run": iso(p.latest_run),
            "complete": p.complete,
            "seed": self.seed,
            "size_requested": self.size,
            "size": len(self.changes),
            "all_taken": self.all_taken,
            "note": self.note,
            "pending": {"changes": list(self.pending), "count": len(self.pending), "controls": self.pending},
            "population": {"size": self.population_size, "sha256": p.population_hash,
                           "hash_of": "population.tsv: '<change_id>\\t<as_of>\\n' per change, sorted by change_id",
                           "as_of_dates": p.as_of_dates},
            "method": ("sorted_ids = change_ids of population.tsv in order; "
                       "sample = random.Random(seed).sample(sorted_ids, size) (Python), in draw order"
                       if not self.all_taken else "every change of the population, sorted by change_id"),
            "sample": [c["change_id"] for c in self.changes],
        }


def parse_day(value: str | date, name: str = "date") -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not _DATE.match(text):
        raise SamplingError(f"{name} {value!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise SamplingError(f"{name} {value!r} is not a valid date: {exc}") from None


def load_period(con: duckdb.DuckDBPyConnection, date_from, date_to, through=None) -> Period:
    """The period's population, each change with its latest results (up to ``through``)."""
    d_from, d_to = parse_day(date_from, "from"), parse_day(date_to, "to")
    if d_from > d_to:
        raise SamplingError(f"the period is empty: from {d_from} is after to {d_to}")
    d_through = parse_day(through, "through") if through is not None else None
    if d_through is not None and d_through < d_from:
        raise SamplingError(f"through {d_through} is before the period's first day {d_from}: no run after it "
                            "could have evaluated a change of the period")
    if not has_population_table(con):
        raise SamplingError("the warehouse has no stored population (schema older than version 3): "
                            "run the nightly evaluation once with this version of ccwatch")
    limit = d_through or date.max
    latest = con.execute("SELECT max(as_of) FROM population WHERE CAST(as_of AS DATE) <= ?", [limit]).fetchone()[0]
    cols = ", ".join(f'p."{c}"' for c in POPULATION_COLUMNS)
    rows = con.execute(
        f"""
        WITH latest AS (
            SELECT change_id, max(as_of) AS as_of FROM population
            WHERE CAST(as_of AS DATE) <= ? GROUP BY change_id)
        SELECT p.as_of, {cols} FROM population p JOIN latest l USING (change_id, as_of)
        WHERE p.merged_at >= ? AND p.merged_at < ?
        ORDER BY p.change_id
        """,
        [limit, datetime.combine(d_from, datetime.min.time()),
         datetime.combine(d_to + timedelta(days=1), datetime.min.time())],
    ).fetchall()
    changes = [dict(zip(("as_of",) + POPULATION_COLUMNS, r, strict=True)) for r in rows]
    if not changes:
        raise SamplingError(_empty_message(con, d_from, d_to, d_through))
    results: dict[str, dict[str, tuple[str, str]]] = {c["change_id"]: {} for c in changes}
    con.execute("CREATE OR REPLACE TEMP TABLE _sample_keys (change_id VARCHAR, as_of TIMESTAMP)")
    con.executemany("INSERT INTO _sample_keys VALUES (?, ?)", [(c["change_id"], c["as_of"]) for c in changes])
    for cid, control_id, status, detail in con.execute(
            "SELECT r.change_id, r.control_id, r.status, r.detail FROM control_results r "
            "JOIN _sample_keys k ON r.change_id = k.change_id AND r.as_of = k.as_of").fetchall():
        results[cid][control_id] = (status, detail)
    con.execute("DROP TABLE _sample_keys")
    for c in changes:
        c["results"] = dict(sorted(results[c["change_id"]].items(), key=lambda kv: control_sort_key(kv[0])))
    return Period(d_from, d_to, latest.date(), latest, changes)


def _empty_message(con, d_from: date, d_to: date, d_through: date | None) -> str:
    span = con.execute("SELECT min(merged_at), max(merged_at), min(CAST(as_of AS DATE)), "
                       "max(CAST(as_of AS DATE)), count(DISTINCT as_of) FROM population").fetchone()
    head = f"no change merged from {d_from} to {d_to} (UTC days, inclusive) in the stored population"
    if not span or span[0] is None:
        return head + ": the population is empty (no run has been evaluated since the upgrade to schema 3)"
    dates = f"runs evaluated on {span[4]} date(s) from {span[2]} to {span[3]}"
    later = f"; only runs up to {d_through} were considered" if d_through and span[3] > d_through else ""
    return (f"{head}; the stored population holds changes merged from {span[0]:%Y-%m-%d} to "
            f"{span[1]:%Y-%m-%d}, {dates}{later}")


def draw(period: Period, size: int, seed: int) -> Sample:
    """Draw ``size`` changes of the period with ``seed`` (see the module doc for the method)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise SamplingError(f"size must be a whole number of at least 1, not {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SamplingError(f"seed must be a whole number, not {seed!r}")
    if size >= len(period.changes):
        return Sample(period, seed, size, list(period.changes), all_taken=True)
    by_id = {c["change_id"]: c for c in period.changes}
    ids = sorted(by_id)
    picked = random.Random(seed).sample(ids, size)
    return Sample(period, seed, size, [by_id[i] for i in picked])


def draw_sample(con: duckdb.DuckDBPyConnection, date_from, date_to, size: int, seed: int, *,
                through=None) -> Sample:
    """The reproducible sample of the period's population (module doc); raises SamplingError."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise SamplingError(f"size must be a whole number of at least 1, not {size!r}")
    return draw(load_period(con, date_from, date_to, through), size, seed)
