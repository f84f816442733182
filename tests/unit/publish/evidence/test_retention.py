"""Evidence retention: config keys evidence.retention_days / evidence.keep_latest and the pruning
that runs after each archive is written."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ccwatch.publish.evidence.archive import build_archive
from ccwatch.publish.evidence.retention import prune_evidence
from ccwatch.publish.evidence.verify import verify_archive
from ccwatch.publish.evidence.write import write_evidence
from ccwatch.settings import ConfigError, EvidenceConfig, load_settings

from tests.helpers import outputs_world as D

AS_OF = datetime(2026, 11, 25, tzinfo=UTC)


def _config(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "ccwatch.yaml"
    p.write_text(D.CONFIG + extra, encoding="utf-8")
    return p


# --- configuration ------------------------------------------------------------------------


def test_defaults_keep_everything(tmp_path):
    s = load_settings(_config(tmp_path, ""))
    assert s.evidence == EvidenceConfig() and s.evidence.retention_days is None and s.evidence.keep_latest == 30


def test_keys_are_read(tmp_path):
    s = load_settings(_config(tmp_path, "evidence: {retention_days: 400, keep_latest: 5}\n"))
    assert (s.evidence.retention_days, s.evidence.keep_latest) == (400, 5)
    s = load_settings(_config(tmp_path, "evidence: {keep_latest: 7}\n"))
    assert (s.evidence.retention_days, s.evidence.keep_latest) == (None, 7)


@pytest.mark.parametrize(("extra", "message"), [
    ("evidence: {retention_days: '30'}\n", "evidence.retention_days: must be an integer"),
    ("evidence: {retention_days: true}\n", "evidence.retention_days: must be an integer"),
    ("evidence: {keep_latest: 1.5}\n", "evidence.keep_latest: must be an integer"),
    ("evidence: {retention_days: 0}\n", "evidence.retention_days: must be at least 1"),
    ("evidence: {retention_days: -3}\n", "evidence.retention_days: must be at least 1"),
    ("evidence: {keep_latest: 0}\n", "evidence.keep_latest: must be at least 1"),
    ("evidence: {keep_forever: true}\n", "evidence.keep_forever: unknown key"),
    ("evidence: 30\n", "evidence: must be a mapping"),
])
def test_bad_values_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError) as exc:
        load_settings(_config(tmp_path, extra))
    assert message in str(exc.value) and "ccwatch.yaml" in str(exc.value)


# --- pruning ----------------------------------------------------------------------------


def _tree(base: Path, names: list[str]) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for n in names:
        if n.endswith("/"):
            (base / n).mkdir()
            (base / n / "manifest.json").write_text("{}")
        else:
            (base / n).write_bytes(n.encode())
    return base


def _names(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir())


ARCH = "ccwatch-evidence-{}.tar.gz".format
OTHER = ["notes.txt", ".ccwatch-evidence-2020-01-01.tar.gz.99.tmp", "2020-01-01-backup/", ".2020-01-01.tmp-1/"]


def test_nothing_deleted_without_retention_days(tmp_path):
    base = _tree(tmp_path / "evidence", [ARCH("2020-01-01"), "2020-01-01/"] + OTHER)
    before = _names(base)
    assert prune_evidence(base, AS_OF, None, 1) == [] and _names(base) == before


def test_old_archives_and_folders_go_newest_and_others_stay(tmp_path, caplog):
    base = _tree(tmp_path / "evidence", [
        ARCH("2026-09-01"), "ccwatch-evidence-2026-09-01.1.tar.gz", "2026-09-01/",
        ARCH("2026-10-01"), "2026-10-01/",
        ARCH("2026-10-25"), "2026-10-25/",  # 31 days before: expired
        ARCH("2026-10-26"), "2026-10-26/",  # exactly 30 days before: kept
        ARCH("2026-11-25"), "2026-11-25/",
        "2026-08-01/",                        # a dated folder whose archive is already gone
    ] + OTHER)
    with caplog.at_level(logging.INFO, logger="ccwatch"):
        deleted = prune_evidence(base, AS_OF, 30, 2, keep=base / ARCH("2026-11-25"))
    assert sorted(p.name for p in deleted) == sorted([
        ARCH("2026-09-01"), "ccwatch-evidence-2026-09-01.1.tar.gz", "2026-09-01", ARCH("2026-10-01"),
        "2026-10-01", ARCH("2026-10-25"), "2026-10-25", "2026-08-01"])
    assert _names(base) == sorted([ARCH("2026-10-26"), "2026-10-26", ARCH("2026-11-25"), "2026-11-25"]
                                  + [o.rstrip("/") for o in OTHER])
    logged = caplog.text
    assert ARCH("2026-09-01") in logged and "2026-08-01" in logged and "deleted 8 item(s)" in logged


def test_keep_latest_protects_the_newest_archives(tmp_path):
    names = [ARCH(d) for d in ("2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01")]
    base = _tree(tmp_path / "evidence", names + ["2025-01-01/", "2025-04-01/"])
    deleted = prune_evidence(base, AS_OF, 30, 3)
    assert sorted(p.name for p in deleted) == sorted([ARCH("2025-01-01"), "2025-01-01"])
    assert _names(base) == sorted(names[1:] + ["2025-04-01"])
    assert prune_evidence(base, AS_OF, 30, 30) == []


def test_rerun_numbers_count_as_newer_and_keep_their_folder(tmp_path):
    base = _tree(tmp_path / "evidence", [ARCH("2025-01-01"), "ccwatch-evidence-2025-01-01.1.tar.gz",
                                         "ccwatch-evidence-2025-01-01.10.tar.gz", "2025-01-01/"])
    deleted = prune_evidence(base, AS_OF, 30, 1)
    # .10 is the newest (numeric, not text order); the folder stays with its kept archive
    assert sorted(p.name for p in deleted) == sorted([ARCH("2025-01-01"), "ccwatch-evidence-2025-01-01.1.tar.gz"])
    assert _names(base) == ["2025-01-01", "ccwatch-evidence-2025-01-01.10.tar.gz"]


def test_the_archive_just_written_is_never_deleted(tmp_path):
    # a backfill of an old date: the new archive is older than the newest ones and than the cutoff
    base = _tree(tmp_path / "evidence", [ARCH("2025-06-01"), ARCH("2025-12-01"), "2025-12-01/",
                                         ARCH("2026-11-25")])
    deleted = prune_evidence(base, datetime(2026, 1, 10, tzinfo=UTC), 1, 1, keep=base / ARCH("2025-12-01"))
    assert [p.name for p in deleted] == [ARCH("2025-06-01")]
    assert _names(base) == ["2025-12-01", ARCH("2025-12-01"), ARCH("2026-11-25")]


def test_write_evidence_applies_retention(tmp_path, caplog):
    home = tmp_path / "home"
    base = _tree(home / "evidence", [ARCH("2025-01-01"), "2025-01-01/", ARCH("2026-11-01"), "2026-11-01/"])
    settings = replace(D.settings(), evidence=EvidenceConfig(retention_days=10, keep_latest=1))
    with caplog.at_level(logging.INFO, logger="ccwatch"):
        res = write_evidence(D.build(), settings, D.AS_OF, home, D.gx_results(), "<html></html>\n", {})
    assert sorted(res.pruned) == sorted([ARCH("2025-01-01"), "2025-01-01", ARCH("2026-11-01"), "2026-11-01"])
    assert _names(base) == ["2026-11-25", ARCH("2026-11-25")] and verify_archive(res.archive) == []
    assert f"deleted {base / ARCH('2025-01-01')}" in caplog.text
    # pruning never touches the new archive's bytes: it is still the archive of its folder
    rebuilt = tmp_path / "rebuilt.tar.gz"
    build_archive(res.directory, "2026-11-25", D.AS_OF, rebuilt)
    assert rebuilt.read_bytes() == res.archive.read_bytes()
    # the pre-ledger archive of 2026-11-01 (an empty file here) is the chain's previous link, marked unreadable
    prev = json.loads((res.directory / "manifest.json").read_text())["previous"]
    assert prev == {"date": "2026-11-01", "sha256": None, "archive": ARCH("2026-11-01"), "unreadable": True}


def test_default_settings_never_prune(tmp_path):
    home = tmp_path / "home"
    base = _tree(home / "evidence", [ARCH("2000-01-01"), "2000-01-01/"])
    res = write_evidence(D.build(), D.settings(), D.AS_OF, home, D.gx_results(), "<html></html>\n", {})
    assert res.pruned == () and ARCH("2000-01-01") in _names(base) and "2000-01-01" in _names(base)
