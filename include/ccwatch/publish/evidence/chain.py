"""The hash chain of evidence dates (CONTROLS.md, "Evidence an auditor can trust (r2)"): every
``ccwatch-evidence-<date>[.<n>].tar.gz`` of an evidence folder verifies on its own (``verify``), and
each manifest's "previous" is the SHA-256 of the manifest.json of an archive of the date it names,
so rewriting one date breaks the link from the next (``python -m ccwatch verify --chain``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ccwatch.publish.evidence.ledger import ARCHIVE_NAME
from ccwatch.publish.evidence.verify import Report, verify


def verify_chain(directory: str | os.PathLike, public_key=None, tsa_anchors=None) -> tuple[list[Report], Report]:
    """Verify every ``ccwatch-evidence-<date>[.<n>].tar.gz`` of an evidence folder and each link of
    the hash chain.  Returns (the archives' reports, the chain's report).

    A link: the ``previous`` of an archive of date D names date P < D and the sha256 of a
    manifest.json; some archive of P in the folder must have exactly that manifest.  Failures: a
    link to no archive of P; a link to a date later than or equal to D; ``previous`` null while an
    earlier date has an archive; a link to a date that is absent although an older date is
    present (retention deletes from the oldest, so a hole was cut).  The oldest date's link may point
    before the folder's first archive (deleted by retention): reported as where the chain starts."""
    d = Path(directory)
    chain = Report(str(d))
    if not d.is_dir():
        chain.errors.append(f"{d}: not a folder")
        return [], chain
    archives = []
    for p in sorted(d.iterdir()):
        m = ARCHIVE_NAME.match(p.name)
        if m:
            archives.append((m.group(1), int(m.group(2) or 0), p))
    archives.sort()
    if not archives:
        chain.errors.append(f"{d}: no ccwatch-evidence-<date>.tar.gz archives")
        return [], chain
    reports = [verify(p, public_key, tsa_anchors) for _, _, p in archives]
    by_date: dict[str, dict[str, str]] = {}
    for (day, _, p), r in zip(archives, reports, strict=True):
        if r.manifest_sha256:
            by_date.setdefault(day, {})[r.manifest_sha256] = p.name
    dates = sorted({a[0] for a in archives})
    for (day, _, p), r in zip(archives, reports, strict=True):
        if r.manifest is None:
            chain.problem(f"{p.name}: no readable manifest, its links cannot be checked")
            continue
        if r.manifest.get("evidence_date") != day:
            chain.problem(f"{p.name}: manifest.json says evidence_date {r.manifest.get('evidence_date')!r}")
        prev = r.manifest.get("previous")
        earlier = [x for x in dates if x < day]
        if "previous" not in r.manifest:
            chain.notes.append(f"{p.name}: manifest version {r.manifest.get('manifest_version')} has no chain link")
            continue
        if prev is None:
            if earlier:
                chain.problem(f"{p.name}: previous is null (claims to be the first) but {earlier[-1]} has an archive")
            else:
                chain.notes.append(f"{p.name}: the chain starts here (previous null)")
            continue
        pdate, psha = prev.get("date"), prev.get("sha256")
        if not isinstance(pdate, str) or pdate >= day:
            chain.problem(f"{p.name}: previous names date {pdate!r}, not a date before {day}")
            continue
        if psha is None:
            chain.problem(f"{p.name}: previous link to {pdate} is unreadable (the writer could not read that "
                          "archive's manifest.json)")
            continue
        if pdate not in by_date:
            if [x for x in dates if x < pdate]:
                chain.problem(f"{p.name}: previous names {pdate}, which has no archive here although older dates "
                              "do (an archive was removed from the middle)")
            else:
                chain.notes.append(f"{p.name}: previous names {pdate}, before the oldest archive here (deleted "
                                   "by retention?): the chain starts here")
            continue
        if psha not in by_date[pdate]:
            chain.problem(f"{p.name}: previous says {pdate} manifest.json sha256 {psha}, but no archive of {pdate} "
                          f"has it ({', '.join(f'{n}: {s}' for s, n in sorted(by_date[pdate].items()))}): "
                          f"{pdate} was rewritten after {day} was written")
        else:
            chain.notes.append(f"{p.name}: previous -> {by_date[pdate][psha]} OK")
        if earlier and earlier[-1] != pdate:
            chain.notes.append(f"{p.name}: links to {pdate}, not to {earlier[-1]} (written after {day}: a backfill)")
    return reports, chain
