"""The auditor's evidence packet of a sample: ``CCWATCH_HOME/samples/<from>_<to>_seed<S>_n<N>/``.

```
index.csv        one row per sampled change (draw order): facts, every change control's status, page,
                 the controls still pending in the run used (its verdict is not final)
index.html       the same, readable, with how the sample was drawn
sample.json      seed, period, population size and SHA-256, as-of dates used, method, ccwatch version,
                 and the nightly archive each as-of date was published in (its SHA-256: ``archives``)
population.tsv   the whole population ('<change_id>\\t<as_of>\\n', sorted): sha256sum = population SHA-256
changes/<change>/page.html     the auditor's questions answered for the change (self-contained)
changes/<change>/change.json   the population row and control results used
changes/<change>/*.json        the raw API payloads (as in the nightly evidence folder)
SHA256SUMS, manifest.json      every file's SHA-256 (``python -m ccwatch verify <packet>``)
```

The packet is a function of the warehouse, the period, the seed and the size (no wall
clock): the same draw writes byte-identical files.  It is built under a temporary name and
published under a name claimed with ``mkdir``, so an existing packet is never overwritten:
a second packet of the same draw is ``..._n<N>.1``, then ``.2``, ...
"""

from __future__ import annotations

import csv
import io
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ccwatch import __version__
from ccwatch.audit.packet_html import change_page, index_page
from ccwatch.audit.sampling import Sample, SamplingError, draw_sample
from ccwatch.common.changes import change_folder
from ccwatch.common.files import building_folder, publish_folder
from ccwatch.common.paths import samples_dir, warehouse_path
from ccwatch.common.times import iso, parse_ts
from ccwatch.controls.catalogue import CHANGE_CONTROLS
from ccwatch.publish.evidence import archive, ledger
from ccwatch.publish.evidence.contents import change_evidence_files
from ccwatch.publish.evidence.reader import RawEvidence
from ccwatch.settings import Settings

INDEX_COLUMNS = ("n", "change_id", "repo", "title", "author", "merged_at", "ticket_key", "deployed_at",
                 "deployer", "category", "results_as_of") + CHANGE_CONTROLS + ("page", "pending_controls")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PacketResult:
    directory: Path
    numbered: bool
    files: int
    sample: Sample


def packet_name(sample: Sample) -> str:
    p = sample.period
    return f"{p.date_from.isoformat()}_{p.date_to.isoformat()}_seed{sample.seed}_n{sample.size}"


def _raw_evidence(con, settings: Settings, as_of: datetime, change: dict, cache: dict) -> dict[str, Any]:
    """file name -> JSON content of the change's raw payloads, with '_missing' (the evidence
    writer's own selection, so packet and nightly archive attach the same files)."""
    raw = cache.get(as_of)
    if raw is None:
        raw = cache[as_of] = RawEvidence(con, as_of)
    return change_evidence_files(raw, settings, change)


def _repo_results(con, repo: str, as_of: datetime) -> dict[str, tuple[str, str]]:
    rows = con.execute("SELECT control_id, status, detail FROM control_results WHERE change_id = ? AND as_of = ? "
                       "ORDER BY control_id", [repo, as_of]).fetchall()
    return {cid: (s, d) for cid, s, d in rows}


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, default=iso) + "\n"


def archive_citations(con: duckdb.DuckDBPyConnection, as_of_dates: list[str]) -> list[dict]:
    """The nightly evidence archive each results date of the sample was published in (table
    ``evidence_archives``; of a date run several times, the latest run's archive, whose folder the
    results are): ``{as_of, archive, sha256, manifest_sha256, signed}``, so every sampled verdict
    can be tied to the archive the auditor received and checked with ``verify``.  A date with no
    recorded archive (evaluated but never published, or published before the table existed) says
    so with ``archive: null`` instead of citing nothing silently."""
    recorded = "evidence_archives" in {t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    out = []
    for d in as_of_dates:
        rec = ledger.latest_record(con, parse_ts(d)) if recorded else None
        if rec is None:
            out.append({"as_of": d, "archive": None, "sha256": None, "manifest_sha256": None, "signed": None,
                        "note": "no archive of this date is recorded in evidence_archives"})
            continue
        out.append({"as_of": d, "archive": Path(str(rec["path"]).replace("\\", "/")).name, "sha256": rec["sha256"],
                    "manifest_sha256": rec["manifest_sha256"], "signed": bool(rec["signed"])})
    return out


def sample_json(sample: Sample, settings: Settings | None, con: duckdb.DuckDBPyConnection | None = None) -> dict:
    out = {"tool": "ccwatch", "kind": "auditor sample", "ccwatch_version": __version__,
           "python": platform.python_version()}
    out.update(sample.describe())
    if con is not None:
        out["archives"] = archive_citations(con, sample.period.as_of_dates)
    out["config_sha256"] = (settings.sha256 or None) if settings else None
    return out


def index_rows(sample: Sample) -> list[dict]:
    rows = []
    for n, c in enumerate(sample.changes, 1):
        row = {k: c.get(k) for k in INDEX_COLUMNS if k in c}
        row.update(n=n, results_as_of=c["as_of"], page=f"changes/{change_folder(c['change_id'])}/page.html")
        for cid in CHANGE_CONTROLS:
            row[cid] = (c["results"].get(cid) or ("", ""))[0]
        row["pending_controls"] = " ".join(k for k, (s, _) in c["results"].items() if s == "pending")
        rows.append(row)
    return rows


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(INDEX_COLUMNS)
    for r in rows:
        w.writerow([iso(r.get(c)) for c in INDEX_COLUMNS])
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")


def _fill(root: Path, con, sample: Sample, settings: Settings, progress: Progress | None) -> None:
    meta = sample_json(sample, settings, con)
    rows = index_rows(sample)
    _write(root / "sample.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    _write(root / "population.tsv", sample.period.population_lines)
    _write(root / "index.csv", _csv(rows))
    _write(root / "index.html", index_page(meta, rows, CHANGE_CONTROLS))
    page_meta = {"from": meta["period"]["from"], "to": meta["period"]["to"], "seed": sample.seed}
    cache: dict = {}
    total = len(sample.changes)
    for n, c in enumerate(sample.changes, 1):
        if progress:
            progress(f"writing packet page {n}/{total}: {c['change_id']}")
        folder = root / "changes" / change_folder(c["change_id"])
        files = _raw_evidence(con, settings, c["as_of"], c, cache)
        not_found = files.pop("_missing", [])
        facts = {k: v for k, v in c.items() if k != "results"}
        files["change.json"] = {"change_id": c["change_id"], "results_as_of": iso(c["as_of"]),
                                "population_row": {k: iso(v) if isinstance(v, datetime) else v
                                                   for k, v in facts.items()},
                                "control_results": [{"control_id": k, "status": s, "detail": d}
                                                    for k, (s, d) in c["results"].items()],
                                "evidence_files": sorted(f for f in files if f != "change.json"),
                                "not_found": not_found}
        for name, content in sorted(files.items()):
            _write(folder / name, _json(content))
        html = change_page(c, n, total, page_meta, _repo_results(con, c["repo"], c["as_of"]),
                           sorted(files), not_found, settings.windows if settings else None)
        _write(folder / "page.html", html)


def write_packet(con: duckdb.DuckDBPyConnection, sample: Sample, home: Path, settings: Settings, *,
                 progress: Progress | None = None) -> PacketResult:
    """Write the sample's evidence packet under ``home/samples/`` (module doc)."""
    base = samples_dir(home)
    stem = packet_name(sample)
    with building_folder(base, stem) as tmp:
        _fill(tmp, con, sample, settings, progress)
        archive.write_sums(tmp)
        p = sample.period
        archive.write_manifest(tmp, {
            "manifest_version": 1, "tool": "ccwatch", "kind": "auditor sample",
            "period": {"from": p.date_from.isoformat(), "to": p.date_to.isoformat()},
            "results_through": p.through.isoformat(), "seed": sample.seed, "size": len(sample.changes),
            "population": {"size": sample.population_size, "sha256": p.population_hash},
            "archives": archive_citations(con, p.as_of_dates),
            "versions": archive.versions(),
        })
        target, numbered = publish_folder(tmp, base, stem)
    return PacketResult(target, numbered, len(archive.list_files(target)), sample)


def open_warehouse(home: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse, read only (sampling never writes it); a clear error when it is absent."""
    path = warehouse_path(home)
    if not path.is_file():
        raise SamplingError(f"no warehouse at {path} (has a nightly run completed? is CCWATCH_HOME right?)")
    return duckdb.connect(str(path), read_only=True)


def sample_packet(home: Path, settings: Settings, date_from, date_to, size: int, seed: int, *,
                  through=None, progress: Progress | None = None) -> PacketResult:
    """Draw the sample of the period and write its packet: the CLI's and the DAG's one call."""
    con = open_warehouse(home)
    try:
        sample = draw_sample(con, date_from, date_to, size, seed, through=through)
        if progress:
            progress(f"population of {sample.period.date_from} to {sample.period.date_to}: "
                     f"{sample.population_size} changes (sha256 {sample.period.population_hash[:12]}…); "
                     f"drawing {len(sample.changes)}")
        return write_packet(con, sample, home, settings, progress=progress)
    finally:
        con.close()
