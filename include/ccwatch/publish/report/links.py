"""Where a listed change links to: its pull request (or the commit of a direct push), its Jira
ticket, and its folder in the evidence folder.

Evidence links are relative (``changes/<folder>/change.json``), so they work from the dated
folder and from the unpacked archive, where report.html sits next to ``changes/``.  The folder
names are the writer's own (``publish/evidence/folder.folder_names`` over the writer's ids,
``results_history.evidence_unit_ids``), so a case-insensitive collision gets the ``-2`` the writer gives it.
When SQL proves no two ids can collide (``results_history.evidence_folders_may_collide``, the usual case)
``folder_names`` gives every id its plain ``change_folder``, and only the listed ids are named
(at 100k changes that saves naming every change).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb

from ccwatch.common.changes import change_folder
from ccwatch.common.text import clip
from ccwatch.publish import results, results_history
from ccwatch.publish.evidence.folder import folder_names
from ccwatch.publish.report.markup import e, link, local_link

#: the file every change folder holds (facts, control results, the evidence files, what was not found)
CHANGE_FILE = "change.json"


class ChangeLinks:
    """The changes of the rows a report lists, as the run of this date evaluated them (its stored
    population, else change_facts), with their commit pages and evidence folder names."""

    def __init__(self, con: duckdb.DuckDBPyConnection, as_of: datetime, change_ids: Iterable[str],
                 also: Iterable[str] = ()):
        """``change_ids``: the listed changes; ``also``: other ids that get an evidence link only
        (repositories, changes named in the GX section)."""
        change_ids = list(change_ids)
        self.changes = results.run_changes_by_id(con, as_of, change_ids)
        self.commits = results.commit_urls(con, [(c.get("repo"), c.get("sha")) for c in self.changes.values()])
        if results_history.evidence_folders_may_collide(con):
            self.folders = folder_names(results_history.evidence_unit_ids(con))
        else:
            linked = results_history.evidence_unit_ids(con, [*change_ids, *also])
            self.folders = {i: change_folder(i) for i in linked}

    def change(self, change_id: str) -> dict | None:
        return self.changes.get(change_id)

    def evidence(self, change_id: str, file: str = "") -> str | None:
        """The relative href of the change's (or repository's) evidence folder, or of one of its files."""
        folder = self.folders.get(change_id)
        return None if folder is None else f"changes/{folder}/{file}"

    def evidence_cell(self, change_id: str) -> str:
        """Links to the change's ``change.json`` and its folder ("" when the writer makes no folder)."""
        if change_id not in self.folders:
            return '<span class="muted">no folder</span>'
        return (local_link(self.evidence(change_id, CHANGE_FILE), CHANGE_FILE, "facts, results and the list of "
                           "evidence files of this change")
                + " · " + local_link(self.evidence(change_id), "folder", "every evidence file of this change"))

    def change_cells(self, change_id: str, *, title: bool = True) -> str:
        """``<td>`` change (link to the PR or commit, title) · author · ticket · evidence."""
        c = self.change(change_id)
        head = link(results.change_link(c, self.commits), change_id)
        if title and c and c.get("title"):
            head += f'<div class="detail">{e(clip(c.get("title")))}</div>'
        ticket = link(c.get("ticket_url"), c["ticket_key"]) if c and c.get("ticket_key") else ""
        author = e(c.get("author")) if c else ""
        return (f"<td>{head}</td><td>{author}</td><td>{ticket}</td>"
                f"<td class=\"links\">{self.evidence_cell(change_id)}</td>")
