"""The Slack alert: Block Kit message for failures not alerted before, sending through
slack_sdk, and the alert memory (table ``slack_alerts``, schema migration 2).

A (change_id, control_id) pair is alerted once when it starts failing; while it keeps
failing it is not repeated; when a later run finds it passing (or pending / not
applicable) it is reported once as resolved, after which a new failure alerts again.
A failure an exceptions-register entry covers (``control_results.exception``, r2) is not a new
failure: it is not alerted; a failure alerted before that becomes covered is said once ("now
covered by an exception", state ``excepted``), so when the exception stops applying and the row
still fails it alerts again.  Entries of the register that do not apply on the date are named in
one line of any message the night sends (they do not send a message on their own).
Everything taken from the data is escaped for mrkdwn, and links are emitted only for
plain http(s) URLs, so a PR title cannot mention a channel or forge a link.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any

import duckdb

from ccwatch.common.endpoints import Endpoint, redact_url
from ccwatch.common.secrets import scrub
from ccwatch.common.times import evidence_date, iso, minute_z, naive_utc
from ccwatch.controls.catalogue import control_name, control_sort_key
from ccwatch.publish import results
from ccwatch.publish.results import safe_url
from ccwatch.settings import Settings

MAX_BLOCKS = 50
MAX_SECTION = 3000
#: sending: retries per post (429, 5xx, connection errors) and the longest Retry-After obeyed
MAX_RETRIES = 3
MAX_RETRY_AFTER = 60
_META = "ccwatch"  # private key of the message dict: what mark_alerted records; never sent


class SlackSendError(RuntimeError):
    """Slack refused the message (``ok: false``) or could not be reached."""


def mrkdwn_escape(text: Any) -> str:
    """Slack's three control characters; turns '<!channel>' and '<http://x|y>' into inert text."""
    return str("" if text is None else text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: Any, label: Any) -> str:
    u = safe_url(url)
    text = mrkdwn_escape(label)
    return f"<{u}|{text}>" if u else text


def _clip(text: Any, limit: int) -> str:
    s = " ".join(str("" if text is None else text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# --- alert memory ---------------------------------------------------------------------


def alert_states(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """(change_id, control_id) -> latest state ('alerted' | 'resolved')."""
    rows = con.execute(
        "SELECT change_id, control_id, state FROM slack_alerts "
        "QUALIFY row_number() OVER (PARTITION BY change_id, control_id ORDER BY as_of DESC, alerted_at DESC) = 1"
    ).fetchall()
    return {(c, k): s for c, k, s in rows}


def mark_alerted(con: duckdb.DuckDBPyConnection, as_of: datetime, message_meta: dict, ts: str | None = None) -> int:
    """Record what a successfully sent message carried (the message itself or its ``ccwatch`` meta).

    Call only after ``send_slack`` returned. Returns the number of rows recorded."""
    meta = message_meta.get(_META, message_meta) if isinstance(message_meta, dict) else {}
    now = datetime.now(UTC).replace(tzinfo=None)  # bookkeeping only, never used to evaluate
    rows = [(naive_utc(as_of), a["change_id"], a["control_id"], "alerted", now, a.get("detail"), ts)
            for a in meta.get("alerted", [])]
    rows += [(naive_utc(as_of), x["change_id"], x["control_id"], "excepted", now, x.get("exception"), ts)
             for x in meta.get("excepted", [])]
    rows += [(naive_utc(as_of), r["change_id"], r["control_id"], "resolved", now, r.get("status"), ts)
             for r in meta.get("resolved", [])]
    if rows:
        con.execute("BEGIN TRANSACTION")
        try:
            con.executemany("INSERT INTO slack_alerts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return len(rows)


# --- message ----------------------------------------------------------------------------


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _bounded(head: str, lines: list[str], limit: int = MAX_SECTION) -> str:
    """head + as many lines as fit in ``limit`` characters, then '... and N more'."""
    out = head
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        tail = f"\n… and {rest} more" if rest else ""
        if len(out) + 1 + len(line) + len(tail) <= limit:
            out += "\n" + line
            continue
        more = f"\n… and {len(lines) - i} more"
        while len(out) + len(more) > limit:  # only if head itself is huge
            out = out[: limit - len(more) - 1] + "…"
        return out + more
    return out


def _change_line(row: dict, change: dict | None, links: dict) -> str:
    parts = [_link(results.change_link(change, links), row["change_id"])]
    if change and change.get("ticket_key"):
        parts.append(_link(change.get("ticket_url"), change["ticket_key"]))
    title = f" _{mrkdwn_escape(_clip(change.get('title'), 80))}_" if change and change.get("title") else ""
    return f"• {' · '.join(parts)}{title} — {mrkdwn_escape(_clip(row['detail'], 400))}"


def _location(report_location: str) -> str:
    url = safe_url(report_location)
    if url:
        return f"<{url}|report>"
    return f"`{mrkdwn_escape(_clip(report_location, 300)).replace('`', chr(39))}`"


def digest_line(digests: dict) -> str:
    """The archive's and manifest.json's SHA-256 in one short line (evidence_archives row)."""
    name = str(digests.get("path") or "").replace("\\", "/").rsplit("/", 1)[-1]
    return (f"archive {name} sha256 {digests.get('sha256')}, manifest sha256 {digests.get('manifest_sha256')}"
            + ("" if digests.get("signed") else " (unsigned)"))


def reconciliation_line(rows: list[dict]) -> str | None:
    """(r2) One loud line when the population reconciliation failed for a repository (None when every
    repository matches or the run has no reconciliation): sent every night it fails, never deduplicated."""
    bad = [r for r in rows if not r["match"]]
    if not bad:
        return None
    said = "; ".join(f"{r['repo']} ({r['branch']}): search {r['search_count'] if r['search_count'] is not None else 'none'}"
                     f" vs population {r['population_count']}" for r in bad)
    return (f"POPULATION RECONCILIATION FAILED for {len(bad)} repositor{'y' if len(bad) == 1 else 'ies'}: {said}. "
            "The evidence population may be incomplete; see reconciliation.csv")


def build_digest_message(as_of: datetime, digests: dict, report_location: str,
                         reconciliation: list[dict] | None = None) -> dict:
    """A night without news: one line with the digests, so every night leaves a record outside the archive
    (and the reconciliation's failure line, when it failed)."""
    day = evidence_date(as_of).isoformat()
    recon = reconciliation_line(reconciliation or [])
    text = f"ccwatch {day}: no new failures; {digest_line(digests)}"
    if recon:
        text = f"ccwatch {day}: {recon}; no new failures; {digest_line(digests)}"
    return {"text": mrkdwn_escape(text),
            "blocks": [_section(f"{mrkdwn_escape(text)} · {_location(report_location)}")],
            _META: {"as_of": iso(naive_utc(as_of)), "alerted": [], "resolved": []}}


def invalid_exceptions_line(entries: list[dict]) -> str | None:
    """The one line naming the register's entries that do not apply on the date (None: none)."""
    bad = [e for e in entries if e["status"] != "valid"]
    if not bad:
        return None
    head = f"{len(bad)} exception entr{'ies do' if len(bad) != 1 else 'y does'} not apply: "
    tail = " (see exceptions.csv)"
    shown = []
    for i, e in enumerate(bad):
        more = f", … and {len(bad) - i} more" if i < len(bad) else ""
        item = f"{e['id']} {e['reason']}"
        if len(head) + len(", ".join([*shown, item])) + len(more) + len(tail) > MAX_SECTION - 100:
            return head + ", ".join(shown) + more + tail
        shown.append(item)
    return head + ", ".join(shown) + tail


def build_slack_message(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime,
                        report_location: str, digests: dict | None = None) -> dict | None:
    """Block Kit payload ({text, blocks, ccwatch}) for new failures, resolved ones and alerted
    failures now covered by an exception; None if nothing new.  Failures an exception covers are
    never new.  ``digests`` (the date's evidence_archives row) adds the archive and manifest SHA-256 line."""
    rows = results.results(con, as_of)
    if not rows:
        return None
    recon = reconciliation_line(results.reconciliation(con, as_of))
    states = alert_states(con)
    today = {(r["change_id"], r["control_id"]): r for r in rows}
    new = [r for r in rows if r["status"] == "fail" and not r.get("exception")
           and states.get((r["change_id"], r["control_id"])) != "alerted"]
    resolved = [today[k] for k, st in sorted(states.items()) if st == "alerted" and k in today
                and today[k]["status"] != "fail"]
    excepted = [r for r in rows if r["status"] == "fail" and r.get("exception")
                and states.get((r["change_id"], r["control_id"])) == "alerted"]
    if not new and not resolved and not excepted:
        return None  # the digest message carries the reconciliation's line
    entries = results.exception_entries(con, as_of)
    expires = {e["id"]: e["expires"] for e in entries}
    invalid = invalid_exceptions_line(entries)
    n_excepted = sum(1 for r in rows if r["status"] == "fail" and r.get("exception"))
    facts = {c["change_id"]: c for c in results.changes(con)}
    for r in results.repos(con):
        facts.setdefault(r["change_id"], {"pr_url": r.get("html_url"), "repo": r.get("repo")})
    links = results.commit_urls(con)
    day = evidence_date(as_of).isoformat()
    failing_today = sum(1 for r in rows if r["status"] == "fail")

    by_control: dict[str, list[dict]] = {}
    for r in new:
        by_control.setdefault(r["control_id"], []).append(r)
    controls = sorted(by_control, key=control_sort_key)
    if new:
        headline = f"ccwatch {day}: {len(new)} new CC8.1 control failure{'s' if len(new) != 1 else ''}"
    elif resolved:
        headline = f"ccwatch {day}: {len(resolved)} CC8.1 failure{'s' if len(resolved) != 1 else ''} resolved"
    else:
        headline = (f"ccwatch {day}: {len(excepted)} CC8.1 failure{'s' if len(excepted) != 1 else ''} now covered "
                    "by an exception")
    covered = f" ({n_excepted} covered by an exception)" if n_excepted else ""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150], "emoji": False}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"As of {iso(naive_utc(as_of))} · {failing_today} failing result(s) today{covered}, "
            f"{len(new)} not alerted before · {_location(report_location)}"}]},
    ]
    if new:
        summary = [f"• *{c}* {mrkdwn_escape(control_name(c))}: {len(by_control[c])}" for c in controls]
        blocks.append(_section(_bounded("*New failures per control*", summary)))
        blocks.append({"type": "divider"})
    # divider + section for resolved and for newly excepted, one context line for invalid entries, the digest line
    reserve = ((2 if resolved else 0) + (2 if excepted else 0) + (1 if invalid else 0) + (1 if digests else 0)
               + (1 if recon else 0))
    room = MAX_BLOCKS - len(blocks) - reserve
    for i, c in enumerate(controls):
        group = by_control[c]
        if i == room - 1 and len(controls) > room:
            left = sum(len(by_control[x]) for x in controls[i:])
            blocks.append(_section(f"… and {left} more failing change(s) in {len(controls) - i} more control(s); "
                                   "see the report"))
            break
        lines = [_change_line(r, facts.get(r["change_id"]), links) for r in group]
        blocks.append(_section(_bounded(f"*{c} {mrkdwn_escape(control_name(c))}* ({len(group)} new)", lines)))
    if resolved:
        lines = [f"• {_link(results.change_link(facts.get(r['change_id']), links), r['change_id'])} — "
                 f"*{r['control_id']}* {mrkdwn_escape(control_name(r['control_id']))} now {r['status']}"
                 for r in resolved]
        if new:
            blocks.append({"type": "divider"})
        blocks.append(_section(_bounded(f"*Resolved since the last alert* ({len(resolved)})", lines)))
    if excepted:
        lines = [f"• {_link(results.change_link(facts.get(r['change_id']), links), r['change_id'])} — "
                 f"*{r['control_id']}* {mrkdwn_escape(control_name(r['control_id']))}: still fail, excepted by "
                 f"{mrkdwn_escape(r['exception'])}"
                 + (f" until {minute_z(expires[r['exception']])}" if expires.get(r["exception"]) else "")
                 for r in excepted]
        if new or resolved:
            blocks.append({"type": "divider"})
        blocks.append(_section(_bounded(f"*Now covered by an exception* ({len(excepted)})", lines)))
    if invalid:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn_escape(invalid)}]})
    if recon:
        blocks.insert(2, _section(f"*{mrkdwn_escape(recon)}*"))
    if digests:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn_escape(digest_line(digests))}]})

    counts = ", ".join(f"{c}: {len(by_control[c])}" for c in controls)
    text = headline + (f" ({counts})" if counts else "")
    if new and resolved:
        text += f"; {len(resolved)} resolved"
    if excepted and (new or resolved):
        text += f"; {len(excepted)} now covered by an exception"
    if invalid:
        text += f"; {invalid.split(':', 1)[0]}"
    if recon:
        text += f"; {recon}"
    if digests:
        text += f"; {digest_line(digests)}"
    meta = {
        "as_of": iso(naive_utc(as_of)),
        "alerted": [{"change_id": r["change_id"], "control_id": r["control_id"], "detail": r["detail"]} for r in new],
        "resolved": [{"change_id": r["change_id"], "control_id": r["control_id"], "status": r["status"]}
                     for r in resolved],
        "excepted": [{"change_id": r["change_id"], "control_id": r["control_id"], "exception": r["exception"]}
                     for r in excepted],
    }
    return {"text": mrkdwn_escape(text), "blocks": blocks, _META: meta}


def build_pipeline_failure_message(dag_id: str, run_id: str, task_id: str, error: str, *,
                                   config_broken: bool = False) -> dict:
    """The separate alert for a failed pipeline task: no verdict was produced, so it is no all-clear.
    ``config_broken``: the task failed because the configuration file does not load (the error names
    the file and the key); every run fails the same way until it is fixed."""
    err = scrub(str(error or "")).replace("```", "'''")
    err = err if len(err) <= 2500 else err[:2499] + "…"
    fields = [("DAG", dag_id), ("Run", run_id), ("Task", task_id)]
    headline = f"ccwatch pipeline failed: {task_id} of {dag_id}"
    if config_broken:
        headline = f"ccwatch configuration is broken: {dag_id} cannot run"
        fields.append(("Fix", "the file and key named below; every run fails until the file loads "
                              "(python -m ccwatch check-config FILE)"))
    return {
        "text": mrkdwn_escape(f"{headline} (run {run_id}). No compliance verdict was produced for this run."),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, 150), "emoji": False}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{mrkdwn_escape(_clip(v, 500))}"}
                                           for k, v in fields]},
            _section(f"```{mrkdwn_escape(err) or '(no error text)'}```"),
            {"type": "context", "elements": [{"type": "mrkdwn", "text":
                "No control results were produced or archived for this run: this is not an all-clear."}]},
        ],
    }


# --- sending ----------------------------------------------------------------------------


def _retry_handlers() -> list:
    """Bounded retries: at most MAX_RETRIES per post in all. 429 waits its Retry-After unless that is
    longer than MAX_RETRY_AFTER (then it fails now: the task's own retries or the next run alert
    later); any 5xx and connection errors back off exponentially (0.5 s, 1 s, 2 s plus jitter)."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    class BoundedRateLimit(RateLimitErrorRetryHandler):
        def _can_retry(self, *, state, request, response=None, error=None) -> bool:
            if not super()._can_retry(state=state, request=request, response=response, error=error):
                return False
            wait = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
            wait = wait[0] if isinstance(wait, list) and wait else wait
            try:
                return wait is None or int(wait) <= MAX_RETRY_AFTER
            except (TypeError, ValueError):
                return True

    class AnyServerError(ServerErrorRetryHandler):  # the built-in one retries only 500 and 503
        def _can_retry(self, *, state, request, response=None, error=None) -> bool:
            return response is not None and 500 <= response.status_code <= 599

    return [ConnectionErrorRetryHandler(max_retry_count=MAX_RETRIES), BoundedRateLimit(max_retry_count=MAX_RETRIES),
            AnyServerError(max_retry_count=MAX_RETRIES)]


def send_slack(endpoint: Endpoint, channel: str, message: dict) -> dict:
    """Post the message with chat.postMessage, with bounded retries of 429, 5xx and connection errors.

    Returns Slack's response body; raises SlackSendError when Slack answers ``ok: false`` or
    cannot be reached after the retries (the message names the API and error code, never the token)."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    ctx = None
    if not endpoint.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    client = WebClient(token=endpoint.token, base_url=endpoint.base_url, ssl=ctx, retry_handlers=_retry_handlers())
    where = redact_url(endpoint.base_url)
    try:
        resp = client.chat_postMessage(channel=channel, text=message.get("text"), blocks=message.get("blocks"),
                                       unfurl_links=False, unfurl_media=False)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        status = getattr(exc.response, "status_code", None)
        text = _clip(scrub(str(error or f"HTTP {status}")), 300)
        raise SlackSendError(f"Slack chat.postMessage to {channel} at {where} failed: {text}"
                             + (f" (HTTP {status})" if error and status and status != 200 else "")) from None
    except OSError as exc:
        raise SlackSendError(f"Slack chat.postMessage to {channel} at {where} failed: {scrub(str(exc))}") from None
    except ValueError as exc:  # a truncated or non-JSON answer (e.g. a proxy's error page)
        raise SlackSendError(f"Slack chat.postMessage to {channel} at {where} failed: the answer is not JSON "
                             f"({type(exc).__name__})") from None
    data = dict(resp.data) if isinstance(resp.data, dict) else {}
    if not data.get("ok"):
        raise SlackSendError(f"Slack chat.postMessage to {channel} at {where} failed: {data.get('error')}")
    return data
