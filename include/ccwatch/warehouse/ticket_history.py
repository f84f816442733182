"""Every ticket fact as of a time T, from the current issue and its changelog (CONTROLS.md r2).

Jira gives the issue as it is now; its changelog says what changed, when and by whom, each item
with the value before (``from``) and after (``to``).  The value of a field at T is the current
value with every later item undone: the ``from`` of the earliest item after T, else the current
value.  So a field that is non-blank and has no item at all was set when the ticket was created,
and a field whose only items come after T was blank (the ``from`` of its first item) until then;
before the ticket was created nothing existed.

A changelog item belongs to a configured field when its ``fieldId`` is the field's id, or, for an
item without ``fieldId`` (Jira Server / Data Center), when its ``field`` is one of the field's
names in Jira's field list (``GET /rest/api/2/field``: ``name``, ``untranslatedName``, the id).
A renamed field matches by id; a Cloud item of another field that happens to share the name does
not.  Without a field list (none fetched) an item matches when its name or id is the configured
reference itself, case-insensitively.

Temp tables made for the shared facts (``warehouse.facts``) and the control families:

- ``_jfield(col, fid, names, loose)``: the fields followed: ``business_justification``,
  ``risk_assessment``, ``testing_plan``, ``postmortem``, ``required:<name>`` for each of
  ``jira.required_fields``, and the system fields ``labels``, ``priority``, ``issuetype``;
- ``_ticket_field_history(key, col, seg_start, seg_end, value, blank, run_start, run_by,
  run_initial)`` (``col`` an ENUM of the followed fields; the system fields are dropped once
  ``_ticket_asof`` is built): per linked ticket and followed field,
  the value on ``[seg_start, seg_end)``
  (the last segment ends at +infinity); for a non-blank segment, when its run of non-blank values
  began (``run_start``), the changelog author who began it (``run_by``; NULL when it began at the
  ticket's creation, ``run_initial``).  The value at T: the segment with
  ``seg_start <= T < seg_end`` (an item at exactly T has happened);
- ``_ticket_asof(key, status, status_category, issue_type, priority, labels, created,
  browse_url)``: the linked tickets that exist at ``as_of`` (created at or before it), as of it.

Set-based: a few segments per ticket and field, equi-joined on the ticket key; the work tables
(``_tk``, ``_tk_now``, ``_tk_items``, ``_jstatus``) are dropped once the history is built.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from ccwatch.settings import Settings
from ccwatch.warehouse.normalize.jira import configured_fields

#: the system fields whose history decides the change category (labels, issue type, priority)
SYSTEM_FIELDS = ("labels", "priority", "issuetype")


def followed_fields(settings: Settings) -> list[tuple[str, str]]:
    """(history column, configured reference) of every configured field: the four ``jira.fields``,
    then ``required:<name>`` per ``jira.required_fields`` (the column names ``configured_fields``
    of the normaliser uses)."""
    f = settings.jira.fields
    cols = [("business_justification", f.business_justification), ("risk_assessment", f.risk_assessment),
            ("testing_plan", f.testing_plan), ("postmortem", f.postmortem)]
    return cols + [(f"required:{name}", name) for name in settings.jira.required_fields]


def _field_list(con: duckdb.DuckDBPyConnection) -> Any:
    row = con.execute("SELECT payload FROM raw_payloads WHERE source = 'jira' AND kind = 'fields' "
                      "AND natural_key = 'fields' AND status_code = 200").fetchone()
    payload = json.loads(row[0]) if row and row[0] is not None else None
    return payload if isinstance(payload, list) else None


def field_matchers(settings: Settings, fields_payload: Any) -> list[tuple[str, str, list[str], bool]]:
    """(column, field id, names, loose) of every followed field.  With Jira's field list: the id the
    configured name or id resolves to (an unknown or ambiguous name is an error naming the config
    key, as in the load) and every name the list gives that id.  Without one (``loose``): the
    configured reference itself, lower-cased, as id and as name."""
    out = []
    if fields_payload is None:
        for col, ref in followed_fields(settings):
            out.append((col, ref.lower(), [ref.lower()], True))
        for sys_id in SYSTEM_FIELDS:
            out.append((sys_id, sys_id, [sys_id], True))
        return out
    ids = configured_fields(settings, fields_payload)  # the same keys as followed_fields' columns
    for col, _ref in followed_fields(settings):
        out.append((col, ids[col], _names(ids[col], fields_payload), False))
    for sys_id in SYSTEM_FIELDS:
        out.append((sys_id, sys_id, _names(sys_id, fields_payload), False))
    return out


def _names(fid: str, fields_payload: list) -> list[str]:
    names = {fid}
    for f in fields_payload:
        if isinstance(f, dict) and f.get("id") == fid:
            names.update(str(f[k]) for k in ("name", "untranslatedName") if f.get(k))
    return sorted(names)


# The linked tickets that exist at as_of (``tid``: a dense number, cheaper to partition by than
# the key), their current values of the followed fields (``_tk_now``), and the changelog items of
# those fields in order (``_tk_items``; ``prev_at``: the time of the item before).
_TICKETS = """
CREATE OR REPLACE TEMP TABLE _tk AS
SELECT t.key, t.created, t.status, t.status_category, t.browse_url,
       coalesce(t.created, '-infinity'::TIMESTAMP) AS since, row_number() OVER () AS tid
FROM tickets t, _params prm
WHERE t.ticket_exists AND (t.created IS NULL OR t.created <= prm.as_of)
  AND t.key IN (SELECT ticket_key FROM _keys WHERE ticket_key IS NOT NULL)
"""

_MATCH = """CASE WHEN jf.loose THEN lower(fc.field_id) = jf.fid OR lower(fc.field) = jf.fid
            ELSE fc.field_id = jf.fid OR (fc.field_id IS NULL AND list_contains(jf.names, fc.field)) END"""

_ITEMS = f"""
CREATE OR REPLACE TEMP TABLE _tk_items AS
SELECT t.tid, jf.cno, fc.at, fc.from_string, fc.author,
       row_number() OVER w AS i, lag(fc.at) OVER w AS prev_at
FROM ticket_field_changes fc JOIN _tk t ON t.key = fc.key JOIN _jfield jf ON {_MATCH}
WHERE fc.at IS NOT NULL
WINDOW w AS (PARTITION BY t.tid, jf.cno ORDER BY fc.at, length(fc.history_id), fc.history_id)
"""

_BLANK = "coalesce(trim({v}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)) = '', true)"

_HISTORY = f"""
CREATE OR REPLACE TEMP TABLE _ticket_field_history AS
WITH last_item AS (
    SELECT tid, cno, max(i) AS i, arg_max(it.at, i) AS last_at FROM _tk_items it GROUP BY ALL
), segs AS (  -- before item i: from the item before (or the creation) on, the value item i changed
    SELECT it.tid, it.cno, it.i - 1 AS seg_no, coalesce(it.prev_at, t.since) AS seg_start, it.at AS seg_end,
           it.from_string AS value, it.author AS ended_by
    FROM _tk_items it JOIN _tk t ON t.tid = it.tid
    UNION ALL  -- after the last item: the current value
    SELECT n.tid, n.cno, l.i, l.last_at, 'infinity'::TIMESTAMP, n.value, NULL
    FROM _tk_now n JOIN last_item l ON l.tid = n.tid AND l.cno = n.cno
), runs AS (  -- a non-blank run begins where the last blank segment before it ended (else at the creation)
    SELECT *, max(seg_end) FILTER (WHERE blank) OVER w AS blank_end,
              arg_max_null(ended_by, seg_no) FILTER (WHERE blank) OVER w AS blank_ended_by
    FROM (SELECT *, {_BLANK.format(v="value")} AS blank FROM segs)
    WINDOW w AS (PARTITION BY tid, cno ORDER BY seg_no ROWS UNBOUNDED PRECEDING)
)
SELECT t.key, CAST(jf.col AS {{cols}}) AS col, r.seg_start, r.seg_end, r.value, r.blank,
       CASE WHEN NOT r.blank THEN coalesce(r.blank_end, t.since) END AS run_start,
       CASE WHEN NOT r.blank THEN r.blank_ended_by END AS run_by,
       CASE WHEN NOT r.blank THEN r.blank_end IS NULL END AS run_initial
FROM runs r JOIN _tk t ON t.tid = r.tid JOIN _jfield jf ON jf.cno = r.cno
UNION ALL  -- a field without changelog items: its current value since the creation
SELECT t.key, CAST(jf.col AS {{cols}}), t.since, 'infinity'::TIMESTAMP, n.value, b.blank,
       CASE WHEN NOT b.blank THEN t.since END, NULL, CASE WHEN NOT b.blank THEN true END
FROM _tk_now n JOIN _tk t ON t.tid = n.tid JOIN _jfield jf ON jf.cno = n.cno
CROSS JOIN LATERAL (SELECT {_BLANK.format(v="n.value")} AS blank) b
ANTI JOIN last_item l ON l.tid = n.tid AND l.cno = n.cno
"""

# Status names -> category: Jira's status list (GET /rest/api/2/status), then what transitions and
# issues of the linked tickets show.
_STATUSES = """
CREATE OR REPLACE TEMP TABLE _jstatus AS
SELECT name, arg_min(category, prio) AS category FROM (
    SELECT json_extract_string(s, '$.name') AS name, json_extract_string(s, '$.statusCategory.key') AS category,
           0 AS prio
    FROM (SELECT unnest(CAST(payload AS JSON[])) AS s FROM raw_payloads
          WHERE source = 'jira' AND kind = 'statuses' AND status_code = 200 AND json_type(payload) = 'ARRAY')
    UNION ALL
    SELECT tt.to_status, tt.to_category, 1 FROM ticket_transitions tt JOIN _tk t ON t.key = tt.key
    UNION ALL
    SELECT status, status_category, 2 FROM _tk
) WHERE name IS NOT NULL AND category IS NOT NULL GROUP BY name
"""

# The linked tickets as of as_of.  Status: the from_status of the earliest transition after as_of,
# else the current status; its category: that of the latest transition up to as_of when it moved
# into that status, else the status list's.
_ASOF = """
CREATE OR REPLACE TEMP TABLE _ticket_asof AS
WITH v AS (
    SELECT h.key, h.col, h.value FROM _ticket_field_history h, _params prm
    WHERE h.col IN ('labels', 'priority', 'issuetype') AND h.seg_start <= prm.as_of AND prm.as_of < h.seg_end
), st AS (
    SELECT tt.key,
        arg_min(tt.from_status, struct_pack(a := tt.at, l := length(tt.history_id), h := tt.history_id))
            FILTER (WHERE tt.at > prm.as_of) AS next_from,
        coalesce(bool_or(tt.at > prm.as_of), false) AS has_next,
        arg_max(struct_pack(s := tt.to_status, c := tt.to_category),
                struct_pack(a := tt.at, l := length(tt.history_id), h := tt.history_id))
            FILTER (WHERE tt.at <= prm.as_of) AS last
    FROM ticket_transitions tt JOIN _tk t ON t.key = tt.key, _params prm
    WHERE tt.at IS NOT NULL GROUP BY tt.key
)
SELECT t.key,
    CASE WHEN st.has_next THEN st.next_from ELSE t.status END AS status,
    CASE WHEN NOT coalesce(st.has_next, false) THEN t.status_category
         WHEN st.last.s = st.next_from AND st.last.c IS NOT NULL THEN st.last.c
         ELSE js.category END AS status_category,
    max(v.value) FILTER (WHERE v.col = 'issuetype') AS issue_type,
    max(v.value) FILTER (WHERE v.col = 'priority') AS priority,
    coalesce(list_filter(string_split(max(v.value) FILTER (WHERE v.col = 'labels'), ' '), lambda x: x <> ''),
             []::VARCHAR[]) AS labels,
    t.created, t.browse_url
FROM _tk t LEFT JOIN st ON st.key = t.key LEFT JOIN _jstatus js ON js.name = st.next_from
LEFT JOIN v ON v.key = t.key
GROUP BY t.key, st.has_next, st.next_from, t.status, t.status_category, st.last, js.category, t.created, t.browse_url
"""


def sql_str(s: str) -> str:
    """A SQL string literal (config values embedded in the SQL)."""
    return "'" + str(s).replace("'", "''") + "'"


def _now_sql(settings: Settings) -> str:
    """The current value of each followed field of the linked tickets: ``_tk_now(tid, cno, value)``."""
    cno = {col: i for i, col in enumerate(c for c, *_ in field_matchers(settings, None))}
    cols = [f"{cno[c]}, t.{c}" for c in ("business_justification", "risk_assessment", "testing_plan", "postmortem")]
    for name in settings.jira.required_fields:
        path = sql_str('$."' + name.replace('"', '\\"') + '"')
        cols.append(f"{cno['required:' + name]}, json_extract_string(t.required_fields, {path})")
    cols += [f"{cno['labels']}, array_to_string(t.labels, ' ')", f"{cno['priority']}, t.priority",
             f"{cno['issuetype']}, t.issue_type"]
    pairs = ", ".join(f"struct_pack(c := {c.split(', ', 1)[0]}, v := {c.split(', ', 1)[1]})" for c in cols)
    return ("CREATE OR REPLACE TEMP TABLE _tk_now AS SELECT tid, p.c AS cno, p.v AS value FROM ("
            f"SELECT k.tid, unnest([{pairs}]) AS p FROM tickets t JOIN _tk k ON k.key = t.key)")


def build_ticket_history(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """``_jfield``, ``_ticket_field_history`` and ``_ticket_asof`` for the tickets ``_keys`` links
    (needs ``_params`` and ``_keys``)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _jfield (cno INTEGER, col VARCHAR, fid VARCHAR, names VARCHAR[], "
                "loose BOOLEAN)")
    con.executemany("INSERT INTO _jfield VALUES (?, ?, ?, ?, ?)",
                    [[i, *m] for i, m in enumerate(field_matchers(settings, _field_list(con)))])
    cols = "ENUM(" + ", ".join(sql_str(c) for c, *_ in field_matchers(settings, None)) + ")"
    con.execute(_TICKETS)
    con.execute(_now_sql(settings))
    con.execute(_ITEMS)
    con.execute(_HISTORY.replace("{cols}", cols))
    con.execute(_STATUSES)
    con.execute(_ASOF)
    for work in ("_tk_now", "_tk_items", "_jstatus", "_tk"):  # only the history and the as-of view stay
        con.execute(f"DROP TABLE {work}")
    # the system fields served _ticket_asof; the controls read the configured fields only
    con.execute("CREATE OR REPLACE TEMP TABLE _ticket_field_history AS SELECT * FROM _ticket_field_history "
                f"WHERE col NOT IN ({', '.join(sql_str(c) for c in SYSTEM_FIELDS)})")
