"""The staging folder of one evidence date: the fetch stages' hand-off to the load.

```
staging/D/_ingest_pending                          a fetch of D started and D is not loaded yet
staging/D/github/<owner>__<name>.jsonl             one repository's raw records (RawRecord lines)
staging/D/github/<owner>__<name>.plan.json         its plan (``plan.github_plan_meta``)
staging/D/github/<owner>__<name>.batches.json     what its fetch leaves to the org-wide batches
staging/D/github_batches.jsonl, github_batches.json   those batches' records, asked after every
                                                   repository (``ingest/github/batches.py``)
staging/D/ingest_github[<owner>__<name>].failed.json   its last fetch failed (stage, as_of, error)
staging/D/jira.jsonl, jira.plan.json, jira_referenced.jsonl, <stage>.failed.json
```

A fetch stage marks the date pending before it touches anything (:func:`ingest_attempt`), removes
its old staging file before writing its plan (:func:`fresh`), and writes its records under a temp
name renamed when complete (``records.write_staging``): a file under its final name is always a
complete fetch made after the plan next to it.  A failed fetch leaves ``<stage>.failed.json`` and
no staging file; only a committed load clears the pending mark.  The load reads the staged files
of every CONFIGURED repository (:func:`staged_github`), naming the ones missing, and the org-wide
batches only when they answer exactly the batches file of each of them (:func:`staged_batches`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ccwatch.common.errors import StageError
from ccwatch.common.files import write_json_atomic
from ccwatch.common.paths import staging_dir
from ccwatch.common.times import iso_z, utc_now_iso
from ccwatch.ingest.plan import combine_github_metas
from ccwatch.ingest.records import RawRecord, read_staging
from ccwatch.settings import Settings

PENDING = "_ingest_pending"
JIRA_FILES = ("jira.jsonl", "jira_referenced.jsonl")  # the project search, the referenced tickets
JIRA_PLAN = "jira.plan.json"
GITHUB_DIR = "github"
GITHUB_STAGE = "ingest_github"
BATCHES_STAGE = "github_batches"  # the DAG task; its failure marker: <stage>.failed.json
BATCHES_FILE, BATCHES_META = "github_batches.jsonl", "github_batches.json"


@contextmanager
def ingest_attempt(sdir: Path, stage: str, as_of: datetime, *, marker: str | None = None) -> Iterator[None]:
    """Mark the date pending before anything is fetched; on failure leave ``<stage>.failed.json``
    (or ``marker``: a file name for a stage whose name is not one)."""
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / PENDING).touch()
    marker = sdir / (marker or f"{stage}.failed.json")
    marker.unlink(missing_ok=True)
    try:
        yield
    except BaseException as exc:
        # SourceError messages name the endpoint, never a token (ccwatch.ingest.errors)
        write_json_atomic(marker, {"stage": stage, "as_of": iso_z(as_of), "failed_at": utc_now_iso(),
                                   "error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise


def failed_ingest(home: Path, as_of: datetime) -> list[str]:
    """The fetch stages of the date whose last attempt failed (with their error)."""
    out = []
    for marker in failure_markers(home, as_of):
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            out.append(f"{info.get('stage')}: {info.get('error')}")
        except (OSError, ValueError):
            out.append(f"{marker.name}: unreadable failure marker")
    return out


def fresh(path: Path) -> Path:
    """Remove an earlier run's staging file first, so a failed fetch can never leave it looking current."""
    path.unlink(missing_ok=True)
    return path


def failure_markers(home: Path, as_of: datetime) -> list[Path]:
    return sorted(staging_dir(home, as_of).glob("*.failed.json"))


# --- GitHub: one staging file and plan per repository ------------------------------------


def repo_slug(repo: str) -> str:
    """``owner/name`` as a file name: ``owner__name`` (GitHub owners cannot contain ``_``)."""
    return repo.replace("/", "__")


def github_dir(home: Path, as_of: datetime) -> Path:
    return staging_dir(home, as_of) / GITHUB_DIR


def repo_files(home: Path, as_of: datetime, repo: str) -> tuple[Path, Path]:
    """The staging file and plan file of ``repo`` for the date of ``as_of``."""
    d, slug = github_dir(home, as_of), repo_slug(repo)
    return d / f"{slug}.jsonl", d / f"{slug}.plan.json"


def deferred_file(home: Path, as_of: datetime, repo: str) -> Path:
    """What ``repo``'s fetch leaves to the org-wide batches (written with its staging file)."""
    return github_dir(home, as_of) / f"{repo_slug(repo)}.batches.json"


def batches_files(home: Path, as_of: datetime) -> tuple[Path, Path]:
    """The org-wide batches of the date: (records, meta naming the batches files answered)."""
    sdir = staging_dir(home, as_of)
    return sdir / BATCHES_FILE, sdir / BATCHES_META


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def staged_batches(settings: Settings, home: Path, as_of: datetime) -> Path:
    """The org-wide batches file, after checking that it answers the current batches file of every
    configured repository (a repository fetched again after it would otherwise load its new commits
    and deployments without, or with the wrong, PRs and statuses); StageError naming what is missing
    or stale."""
    path, meta_path = batches_files(home, as_of)
    if not path.is_file() or not meta_path.is_file():
        raise StageError(f"{meta_path.parent}: staging incomplete, missing {BATCHES_FILE} or {BATCHES_META}: the "
                         f"org-wide batches ({BATCHES_STAGE}: commit PRs, deployment statuses) did not complete "
                         "after the repositories' fetches: rerun it")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        answered = meta["repos"]
        if not isinstance(answered, dict):
            raise TypeError("repos is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StageError(f"{meta_path}: unreadable ({exc}): refusing to load; rerun {BATCHES_STAGE}") from None
    stale = []
    for rc in settings.github.repositories:
        try:
            current = digest(deferred_file(home, as_of, rc.repo).read_bytes())
        except OSError:
            current = None
        if current is None or answered.get(rc.repo) != current:
            stale.append(rc.repo)
    if stale:
        raise StageError(f"{meta_path}: the org-wide batches do not answer the current fetch of "
                         f"{', '.join(stale)} (fetched again after them, or not at all): rerun {BATCHES_STAGE} "
                         "before the load")
    return path


def failure_marker(home: Path, as_of: datetime, repo: str) -> Path:
    return staging_dir(home, as_of) / f"{GITHUB_STAGE}[{repo_slug(repo)}].failed.json"


def missing_github(settings: Settings, home: Path, as_of: datetime) -> list[str]:
    """The configured repositories whose staging file or plan is missing, e.g.
    ``acme/api (acme__api.jsonl)``."""
    out = []
    for rc in settings.github.repositories:
        absent = [p.name for p in (*repo_files(home, as_of, rc.repo), deferred_file(home, as_of, rc.repo))
                  if not p.is_file()]
        if absent:
            out.append(f"{rc.repo} ({', '.join(absent)})")
    return out


def staged_github(settings: Settings, home: Path, as_of: datetime) -> tuple[list[Path], dict[str, Any]]:
    """The staging files of every configured repository (config order), then the org-wide
    batches file, and the repositories' plans combined into one GitHub plan meta; StageError naming
    the repositories whose file or plan is missing, or the stale batches."""
    missing = missing_github(settings, home, as_of)
    if missing:
        raise StageError(f"{github_dir(home, as_of)}: staging incomplete, missing the GitHub staging of "
                         f"{'; '.join(missing)} (the fetch of that repository did not complete)")
    files, metas = [], []
    for rc in settings.github.repositories:
        path, plan_path = repo_files(home, as_of, rc.repo)
        try:
            meta = json.loads(plan_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StageError(f"{plan_path}: the fetch plan of {rc.repo} is unreadable ({exc}): refusing to load"
                             ) from None
        if not isinstance(meta, dict) or rc.repo not in (meta.get("repos") or {}):
            raise StageError(f"{plan_path}: the fetch plan does not cover {rc.repo}: refusing to load")
        files.append(path)
        metas.append(meta)
    files.append(staged_batches(settings, home, as_of))
    return files, combine_github_metas(metas)


def read_github(files: Iterable[Path]) -> Iterator[RawRecord]:
    """The records of the staging files, one file at a time (streamed, never all in memory)."""
    for path in files:
        yield from read_staging(path)
