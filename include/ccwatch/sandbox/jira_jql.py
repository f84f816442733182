"""The Jira double's JQL: the subset ccwatch sends (``key``/``issuekey`` and ``project`` with ``=`` or
``in``, ``updated``/``created`` compared with a date or a relative period such as ``-90d``, ``AND``,
``ORDER BY key|updated|created``), answered over the scenario's issues with Jira's own error texts.
Anything else is refused as Jira refuses a clause it cannot parse, so the connector never relies on
JQL the double does not model.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

CLAUSE = re.compile(r"^\s*(key|issuekey|project|updated|created)\s*(in|=|>=|<=|>|<)\s*(.+?)\s*$", re.I | re.S)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def key_order(key: str) -> tuple[str, int]:
    project, _, num = key.partition("-")
    return project, int(num) if num.isdigit() else 0


class JqlError(ValueError):
    """A query Jira answers with 400: ``messages`` are its ``errorMessages``."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class Jql:
    """Evaluates JQL over ``issues`` (key -> scenario issue, the double's own dict: issues added to a
    served scenario are seen), the known ``projects`` and the double's "now" (relative dates)."""

    def __init__(self, issues: dict[str, dict], projects: list[str], now: datetime) -> None:
        self.issues, self.projects, self.now = issues, projects, now
        self._cache: dict[tuple, tuple[int, tuple[list[str], list[str]]]] = {}
        self._lock = threading.Lock()

    def _relative(self, value: str) -> datetime | None:
        m = re.fullmatch(r"([-+]?)(\d+)([wdhm])", value.strip())
        if not m:
            return None
        delta = timedelta(**{{"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[m.group(3)]: int(m.group(2))})
        return self.now - delta if m.group(1) == "-" else self.now + delta

    def run(self, jql: str, strict: bool) -> tuple[list[str], list[str]]:
        """The keys the query selects, in its order, and Jira's warnings; ``JqlError`` if Jira refuses it.

        A query's result is memoised (pages of one search evaluate it once), keyed also by the
        issue count so a test adding issues to a served scenario is answered afresh."""
        key, size = (jql, strict), len(self.issues)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == size:
            return hit[1][0], hit[1][1]
        keys, warnings = self._run(jql, strict)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (size, (keys, warnings))
        return keys, warnings

    def _run(self, jql: str, strict: bool) -> tuple[list[str], list[str]]:
        parts = re.split(r"\border\s+by\b", jql, maxsplit=1, flags=re.I)
        body, order = (parts[0], parts[1]) if len(parts) == 2 else (jql, "")
        keys = list(self.issues)
        warnings: list[str] = []
        for clause in [c for c in re.split(r"\s+and\s+", body.strip(), flags=re.I) if c.strip()]:
            m = CLAUSE.match(clause)
            if not m:
                raise JqlError(f"Error in the JQL Query: the sandbox does not support the clause '{clause.strip()}'.")
            field, op, raw = m.group(1).lower(), m.group(2).lower(), m.group(3)
            values = [v.strip().strip('"').strip("'") for v in (raw.strip()[1:-1].split(",") if op == "in" else [raw])]
            if field in ("key", "issuekey"):
                missing = [v for v in values if v not in self.issues]
                if missing and strict:
                    raise JqlError(*[f"An issue with key '{v}' does not exist for field 'key'." for v in missing])
                warnings += [f"An issue with key '{v}' does not exist for field 'key'." for v in missing]
                keys = [k for k in keys if k in values]
            elif field == "project":
                unknown = [v for v in values if v not in self.projects]
                if unknown and strict:
                    raise JqlError(*[f"The value '{v}' does not exist for the field 'project'." for v in unknown])
                keys = [k for k in keys if self.issues[k].get("project", k.split("-")[0]) in values]
            else:
                value = values[0]
                when = self._relative(value)
                if when is None:
                    try:
                        when = datetime.strptime(value.replace("/", "-"), "%Y-%m-%d %H:%M" if ":" in value else "%Y-%m-%d").replace(tzinfo=UTC)
                    except ValueError:
                        raise JqlError(f"Date value '{value}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.") from None
                cmp = {">=": lambda a, w=when: a >= w, "<=": lambda a, w=when: a <= w, ">": lambda a, w=when: a > w,
                       "<": lambda a, w=when: a < w, "=": lambda a, w=when: a == w}[op]
                keys = [k for k in keys if cmp(parse_time(self.issues[k].get(field) or self.issues[k]["created"]))]
        sort_field, desc = "key", True
        if order.strip():
            om = re.match(r"^\s*(key|issuekey|updated|created)\s*(asc|desc)?\s*$", order, re.I)
            if not om:
                raise JqlError(f"Error in the JQL Query: the sandbox does not support ORDER BY '{order.strip()}'.")
            sort_field, desc = om.group(1).lower(), (om.group(2) or ("asc" if om.group(1).lower() in ("key", "issuekey") else "desc")).lower() == "desc"
        if sort_field in ("key", "issuekey"):
            keys.sort(key=key_order, reverse=desc)
        else:
            keys.sort(key=lambda k: (self.issues[k].get(sort_field) or self.issues[k]["created"], key_order(k)), reverse=desc)
        return keys, warnings
