"""Writing the evidence folder in one pass (for ``write.write_evidence``).

Every file is rendered once to bytes and written with one open/write/close; its SHA-256 and size
are taken from those bytes (nothing is listed, stat'ed or read back), SHA256SUMS is written as the
files are, and the change folders are tarred + gzip-compressed in the same pass
(``tarstream``; the part is appended to the archive after the folder is swapped in).
To make that possible the change folders are written in the archive's member order (sorted
paths: a folder's directory entry at ``changes/<f>``, its files at ``changes/<f>/``), not in
change-id order.  manifest.json's per-file entries for the change folders are spooled to a file
while writing and copied into the manifest at the end, so no file's bytes stay in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ccwatch.common.changes import change_folder
from ccwatch.common.times import iso
from ccwatch.publish import oscal, results
from ccwatch.publish.evidence import archive, jsonfast
from ccwatch.publish.evidence.archive import CHANGES, archive_mtime
from ccwatch.publish.evidence.carry import Carry
from ccwatch.publish.evidence.contents import change_evidence_files, prefetch_run, repo_evidence_files
from ccwatch.publish.evidence.reader import BATCH, RawEvidence, prefetch_changes
from ccwatch.publish.policy import render_policy, render_readme
from ccwatch.settings import Settings


@dataclass
class Tree:
    """What :func:`write_tree` wrote, for the manifest and the archive."""

    top: dict[str, tuple[str, int]] = field(default_factory=dict)  # top-level file -> (sha256, size)
    has_changes: bool = False
    part: tuple[Path, int, int] | None = None  # compressed changes/ part: (file, crc32, length)
    spool: Path | None = None  # manifest entries of the changes/ files, in order
    files: int = 0
    counts: dict = field(default_factory=dict)
    fetched: tuple[datetime | None, datetime | None] = (None, None)  # of the raw records the folder copies
    reconciliation: dict = field(default_factory=dict)  # manifest.json "reconciliation" (r2)
    carry: Carry | None = None  # the change folders carried over or written (stored after publishing)

    def entries(self) -> list[tuple[str, bool]]:
        """The archive entries (rel, is_dir) but the change folders', sorted: the top-level files, the
        folders of the others (``config``), and ``changes`` when there are change folders."""
        dirs = {n.rsplit("/", 1)[0] for n in self.top if "/" in n} | ({"changes"} if self.has_changes else set())
        return sorted([(n, False) for n in self.top] + [(d, True) for d in dirs])


class _HashingFile:
    def __init__(self, path: Path):
        self.fh = path.open("wb")
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.h.update(data)
        self.size += len(data)
        self.fh.write(data)

    def close(self) -> tuple[str, int]:
        self.fh.close()
        return self.h.hexdigest(), self.size


def _write_file(path: Path | str, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return hashlib.sha256(data).hexdigest()


def manifest_entry(path: str, sha: str, size: int) -> str:
    """One ``files`` element of manifest.json as ``json.dumps(indent=2, sort_keys=True)`` writes it."""
    quoted = f'"{path}"' if _PLAIN_PATH(path) else json.dumps(path, ensure_ascii=False)
    return (f'    {{\n      "path": {quoted},\n      "sha256": "{sha}",\n'
            f'      "size": {size}\n    }}')


# a path json.dumps writes as itself in quotes: nothing to escape (no quote, backslash, control or
# non-ASCII character); folder and file names of the change folders always are
_PLAIN_PATH = re.compile(r'[ !#-\[\]-~]*\Z').match


_AS_IS = frozenset({str, int, type(None)})  # what csv.writer writes exactly as iso() renders it


def _iso_column(values: list) -> list:
    """``[iso(v) for v in values]``: a column of text, integers and NULLs as it is (csv.writer writes
    them as iso() does), else each distinct value rendered once."""
    if set(map(type, values)) <= _AS_IS:
        return values
    try:
        done: dict = {}
        return [done[v] if v in done else done.setdefault(v, iso(v)) for v in values]
    except TypeError:  # an unhashable value (a list)
        return list(map(iso, values))


def _csv_stream(out: _HashingFile, columns: tuple[str, ...], rows: list[dict], chunk: int = 20000) -> None:
    """The rows as CSV (a header line, then ``iso()`` of each column's value), column by column."""
    for start in range(0, max(len(rows), 1), chunk):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if start == 0:
            w.writerow(columns)
        part = rows[start:start + chunk]
        w.writerows(zip(*(_iso_column([r.get(c) for r in part]) for c in columns), strict=True))
        out.write(buf.getvalue().encode("utf-8"))


_FLOATS_IN = (float, list, tuple, dict)  # values jsonfast.wrap_floats can change


def folder_names(change_ids: list[str]) -> dict[str, str]:
    """change_id -> folder name, unique case-insensitively (``-2``, ``-3`` ... in change-id order)."""
    used: set[str] = set()
    folders: dict[str, str] = {}
    for cid in sorted(change_ids):
        base = folder = change_folder(cid)
        n = 2
        while folder.lower() in used:
            folder = f"{base}-{n}"
            n += 1
        used.add(folder.lower())
        folders[cid] = folder
    return folders


CONFIG_FILE = "config/ccwatch.yaml"  # the config file in force, byte for byte (CONTROLS.md r2)

EXCEPTIONS_CSV = "exceptions.csv"  # every register entry of the run with its verdict (r2)
EXCEPTIONS_FILE = "config/exceptions.yaml"  # the register file the run evaluated, byte for byte (r2)


def _write_exceptions(root: Path, con, as_of: datetime, tree: Tree) -> None:
    """exceptions.csv (a header alone when the run had no register or no entries) and, when the run
    evaluated a register, that register's bytes as stored by the evaluation (so the archive holds
    exactly what was applied, even if the file changed since)."""
    f = _HashingFile(root / EXCEPTIONS_CSV)
    rows = [{**r, "applied": "true" if r["applied"] else "false"} for r in results.exception_entries(con, as_of)]
    _csv_stream(f, results.EXCEPTION_COLUMNS, rows)
    tree.top[EXCEPTIONS_CSV] = f.close()
    register = results.exception_register(con, as_of)
    if register is not None:
        data = bytes(register["content"])
        if hashlib.sha256(data).hexdigest() != register["sha256"]:  # never archive what was not evaluated
            raise ValueError(f"exception_registers of {as_of:%Y-%m-%d}: the stored register does not match its "
                             "sha256")
        (root / EXCEPTIONS_FILE).parent.mkdir(exist_ok=True)
        tree.top[EXCEPTIONS_FILE] = (_write_file(root / EXCEPTIONS_FILE, data), len(data))


# (issue #15) Jira's field list as fetched, once per date: the names of every ticket_fields.json, and the
# fetch time those files leave out (contents.py)
JIRA_FIELD_LIST = "jira_field_list.json"

RECONCILIATION_CSV = "reconciliation.csv"  # (r2) search count against the population, per repository
BRANCH_HISTORY_CSV = "branch_history.csv"  # (r2) the production branches' first-parent commits of the changes


def _write_completeness(root: Path, con, settings: Settings, as_of: datetime, tree: Tree) -> None:
    """reconciliation.csv and branch_history.csv (a header alone when there is nothing to list), and the
    manifest's ``reconciliation`` block."""
    recon = results.reconciliation(con, as_of)
    f = _HashingFile(root / RECONCILIATION_CSV)
    _csv_stream(f, results.RECONCILIATION_COLUMNS, [{**r, "match": "true" if r["match"] else "false"} for r in recon])
    tree.top[RECONCILIATION_CSV] = f.close()
    status = results.reconciliation_status(recon)
    tree.reconciliation = {
        "status": status, "file": RECONCILIATION_CSV,
        "rule": "per repository, GitHub search's issueCount of PRs merged into the production branch in the window "
                "(search_query) equals the population's PR changes (population_count); a difference fails this check",
        "repositories": [{"repo": r["repo"], "branch": r["branch"], "window": r["window"],
                          "search_count": r["search_count"], "population_count": r["population_count"],
                          "direct_pushes": r["direct_pushes"], "match": bool(r["match"])} for r in recon]}
    if status == "not_run":
        tree.reconciliation["note"] = "this run stored no reconciliation (evaluated before migration 10)"
    branches = {rc.repo: rc.production_branch for rc in settings.github.repositories}
    rows = [r for r in results.branch_history(con, as_of) if branches.get(r["repo"]) == r["branch"]]
    f = _HashingFile(root / BRANCH_HISTORY_CSV)
    _csv_stream(f, results.BRANCH_HISTORY_COLUMNS, rows)
    tree.top[BRANCH_HISTORY_CSV] = f.close()


def write_tree(root: Path, con, settings: Settings, as_of: datetime, gx_results, report_html: str,
               prefix: str, part_path: Path, config_bytes: bytes | None = None, trust: dict | None = None,
               previous: dict | None = None) -> Tree:
    """Write the dated folder under ``root`` (a new folder beside the dated ones); ``previous``: the
    manifest's link to the previous date, whose unmoved change folders are carried over (carry.py)."""
    tree = Tree()
    mtime = archive_mtime(as_of)
    rows = results.results(con, as_of)
    changes = results.changes(con)
    repos = results.repos(con)

    def put(name: str, data: bytes) -> None:
        tree.top[name] = (_write_file(root / name, data), len(data))

    f = _HashingFile(root / "control_results.csv")
    _csv_stream(f, results.RESULT_COLUMNS, rows)
    tree.top["control_results.csv"] = f.close()
    f = _HashingFile(root / "population.csv")
    _csv_stream(f, results.POPULATION_COLUMNS + ("change_kind",), changes)
    tree.top["population.csv"] = f.close()
    put("gx_validation.json", (json.dumps(gx_results or [], indent=2, sort_keys=True, ensure_ascii=False,
                                          default=str) + "\n").encode("utf-8"))
    put("report.html", report_html.encode("utf-8"))
    put("POLICY.md", render_policy(settings, as_of).encode("utf-8"))
    put("README.txt", render_readme(settings, as_of, trust).encode("utf-8"))
    if config_bytes is not None:
        (root / CONFIG_FILE).parent.mkdir()
        put(CONFIG_FILE, config_bytes)

    change_ids = {c["change_id"] for c in changes}
    units = {c["change_id"]: (c, True) for c in changes}
    for r in repos:
        if r["change_id"] not in change_ids:
            units[r["change_id"]] = (r, False)
    folders = folder_names(list(units))
    tree.top[oscal.FILE_NAME] = oscal.write_assessment_results(root / oscal.FILE_NAME, con, settings, as_of,
                                                               folders, rows=rows,
                                                               policy_sha256=tree.top["POLICY.md"][0],
                                                               results_sha256=tree.top["control_results.csv"][0])
    _write_exceptions(root, con, as_of, tree)
    _write_completeness(root, con, settings, as_of, tree)
    by_change: dict[str, list[dict]] = {}
    for r in rows:
        by_change.setdefault(r["change_id"], []).append(
            {"control_id": r["control_id"], "status": r["status"], "detail": r["detail"], "exception": r["exception"]})
    del rows

    raw = RawEvidence(con, as_of)
    prefetch_run(raw, settings, [facts.get("repo") or cid for cid, (facts, is_change) in units.items()
                                 if not is_change])
    field_list = raw.get("jira", "fields", "fields")
    if field_list is not None:
        put(JIRA_FIELD_LIST, jsonfast.dumps(field_list))
    carry = tree.carry = Carry(con, settings, as_of, root.parent, previous, raw)
    for cid, (facts, is_change) in units.items():
        if is_change:
            carry.prepare(folders[cid], facts, by_change.get(cid, []))
    carriable = carry.plan()

    top = sorted(tree.top)
    sums = _HashingFile(root / archive.SUMS)
    for name in top:
        if name < CHANGES:
            sums.write(f"{tree.top[name][0]}  {name}\n".encode())
    # archive member order: a folder's directory entry sorts at "f", its files at "f/"
    events = sorted([(folder, cid, False) for cid, folder in folders.items()]
                    + [(folder + "/", cid, True) for cid, folder in folders.items()])
    order = [cid for _, cid, files in events if files]
    tree.has_changes = bool(order)
    tree.spool = part_path.with_name(part_path.name + ".manifest")
    changes_dir = os.path.join(root, "changes")
    with part_path.open("wb") as part_fh, tree.spool.open("w", encoding="utf-8", newline="\n") as spool:
        part = archive.tarstream.Deflater(part_fh)
        try:
            if order:
                os.mkdir(changes_dir)
            pos = 0
            for _, cid, files_event in events:
                folder = folders[cid]
                if not files_event:
                    part.add_dir(f"{prefix}/changes/{folder}", mtime)
                    continue
                if pos % BATCH == 0:
                    raw.clear()
                    prefetch_changes(raw, [units[c][0] for c in order[pos:pos + BATCH]
                                           if units[c][1] and folders[c] not in carriable])
                pos += 1
                facts, is_change = units[cid]
                d = f"{changes_dir}/{folder}/"
                os.mkdir(d)
                written = carry.take(folder, d) if folder in carriable else None
                if written is not None:
                    carry.touch_named(facts)
                else:
                    written = _render(raw, settings, cid, facts, is_change, by_change, d, carry, folder)
                lines, entries = [], []
                for name, data, sha in written:
                    rel = f"changes/{folder}/{name}"
                    lines.append(f"{sha}  {rel}\n")
                    entries.append(manifest_entry(rel, sha, len(data)))
                    part.add(f"{prefix}/{rel}", data, mtime)
                sums.write("".join(lines).encode("utf-8"))
                spool.write("".join(e + ",\n" for e in entries))
                tree.files += len(entries)
        except BaseException:
            part.abort()
            raise
        part.close()
    carry.finish()
    tree.part = (part_path, part.crc, part.length) if order else None
    tree.fetched = (raw.fetched[0], raw.fetched[1])
    for name in top:
        if name > CHANGES:
            sums.write(f"{tree.top[name][0]}  {name}\n".encode())
    tree.top[archive.SUMS] = sums.close()
    tree.files += len(tree.top) + 1  # + manifest.json
    counts: dict[str, int] = {}
    for r in (x for rs in by_change.values() for x in rs):
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    tree.counts = {"changes": len(changes), "repositories": len(repos),
                   "control_results": sum(counts.values()), "statuses": counts}
    return tree


def _render(raw: RawEvidence, settings: Settings, cid: str, facts: dict, is_change: bool, by_change: dict,
            d: str, carry: Carry, folder: str) -> list[tuple[str, bytes, str]]:
    """Write a folder's files from its records into ``d``: (name, bytes, sha256) of each, by name."""
    if is_change:
        raw.record()
    files = (change_evidence_files(raw, settings, facts) if is_change
             else repo_evidence_files(raw, settings, facts.get("repo") or cid))
    if is_change:
        carry.rendered(folder, raw.reads, raw.copied)
        raw.reads = None
    missing = files.pop("_missing")
    files["change.json"] = {
        "change_id": cid,
        "facts": {k: iso(v) if isinstance(v, datetime) else
                  jsonfast.wrap_floats(v) if isinstance(v, _FLOATS_IN) else v for k, v in facts.items()},
        "control_results": by_change.get(cid, []), "evidence_files": sorted(files),
        "not_found": missing}
    out = []
    for name in sorted(files):
        data = jsonfast.dumps(files[name])
        out.append((name, data, _write_file(d + name, data)))
    return out


def write_manifest(root: Path, header: dict, tree: Tree) -> None:
    """manifest.json as ``archive.write_manifest`` writes it, the change entries copied from the spool."""
    mark = "\x00files\x00"
    text = json.dumps(dict(header, files=[mark]), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    quoted = json.dumps(mark)
    i = text.index(quoted)
    head, tail = text[:text.rfind("\n", 0, i) + 1], text[i + len(quoted):]
    top = sorted(tree.top)
    with (root / archive.MANIFEST).open("w", encoding="utf-8", newline="\n") as out:
        out.write(head)
        first = [manifest_entry(n, *tree.top[n]) for n in top if n < CHANGES]
        out.write("".join(e + ",\n" for e in first))
        if tree.spool is not None:
            with tree.spool.open("r", encoding="utf-8", newline="\n") as spool:
                shutil.copyfileobj(spool, out, 1 << 20)
        out.write(",\n".join(manifest_entry(n, *tree.top[n]) for n in top if n > CHANGES))
        out.write(tail)
