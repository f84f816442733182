"""The exceptions register file (CONTROLS.md "Exceptions (r2)", docs/EXCEPTIONS.md): parsing.

A malformed register stops the run: every case below must raise RegisterError (a ConfigError)
whose message names the file, the entry (index, and id when it has one) and the key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest
from ccwatch.config_schema import ConfigError
from ccwatch.controls.register import (
    ENTRY_KEYS,
    RegisterError,
    configured_register,
    load_register,
    register_label,
)

from tests.helpers.controls_world import make_settings
from tests.helpers.paths import ROOT

GOOD = """\
# accepted risks, reviewed like code
- id: EX-1
  change_id: acme/payments-api#138
  control_id: CC8.1-13
  justification: staging was rebuilt that week; validated by canary instead
  approved_by: erin@acme.example
  approved_at: 2026-11-04T09:00:00Z
  expires: 2027-02-01
- id: EX-2
  repo: acme/web-frontend
  control_id: CC8.1-12
  justification: environment protection arrives with the GitHub Enterprise upgrade
  approved_by: alice-lead
  approved_at: "2026-11-01"
  expires: 2027-05-01T12:00:00+02:00
"""


def write(tmp_path, text: str, name: str = "exceptions.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def entry(**kw) -> str:
    base = {"id": "EX-9", "change_id": "acme/payments-api#1", "control_id": "CC8.1-04",
            "justification": "accepted", "approved_by": "erin@acme.example",
            "approved_at": "2026-11-01", "expires": "2027-01-01"}
    base.update(kw)
    lines = []
    for i, (k, v) in enumerate((k, v) for k, v in base.items() if v is not _DROP):
        lines.append(("- " if i == 0 else "  ") + f"{k}: {v}")
    return "\n".join(lines) + "\n"


_DROP = object()


def error(tmp_path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(RegisterError) as info:
        load_register(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert isinstance(info.value, ConfigError)
    return msg[len(f"{path}: "):]


def test_a_good_register_parses_every_field(tmp_path):
    path = write(tmp_path, GOOD)
    reg = load_register(path)
    assert reg.path == str(path) and reg.content == path.read_bytes()
    assert reg.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    a, b = reg.entries
    assert (a.index, a.id, a.change_id, a.repo, a.control_id) == (0, "EX-1", "acme/payments-api#138", None,
                                                                  "CC8.1-13")
    assert a.target == "acme/payments-api#138" and b.target == "acme/web-frontend"
    assert a.approved_by == "erin@acme.example" and a.justification.startswith("staging was rebuilt")
    # times are naive UTC (as the warehouse stores them); a date alone is 00:00 UTC
    assert a.approved_at == datetime(2026, 11, 4, 9, 0) and a.expires == datetime(2027, 2, 1)
    assert b.approved_at == datetime(2026, 11, 1) and b.expires == datetime(2027, 5, 1, 10, 0)
    assert (b.change_id, b.repo) == (None, "acme/web-frontend")


@pytest.mark.parametrize("text", ["", "# nothing accepted yet\n", "[]\n"], ids=["empty", "comment", "list"])
def test_an_empty_register_has_no_entries(tmp_path, text):
    assert load_register(write(tmp_path, text)).entries == ()


def test_missing_file_names_the_path_and_the_config_key(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(RegisterError, match=rf"^{path}: exceptions register not found \(config key exceptions\)"):
        load_register(path)


def test_a_directory_is_not_a_register(tmp_path):
    with pytest.raises(RegisterError, match="not a file"):
        load_register(tmp_path)


@pytest.mark.parametrize(("text", "fragment"), [
    ("id: EX-1\ncontrol_id: CC8.1-04\n", "the register must be a list of entries, got a mapping"),
    ("just text\n", "the register must be a list of entries, got str"),
    ("- [1, 2]\n", "entry [0]: must be a mapping of keys"),
    ("- a: [\n", "not valid YAML"),
])
def test_shape_errors(tmp_path, text, fragment):
    assert fragment in error(tmp_path, text)


def test_unknown_key_names_entry_id_and_key(tmp_path):
    msg = error(tmp_path, GOOD + entry(id="EX-3", approver="bob"))
    assert msg.startswith("entry [2] (id EX-3): approver: unknown key (allowed: "), msg
    assert all(k in msg for k in ENTRY_KEYS)


@pytest.mark.parametrize("key", ["id", "control_id", "justification", "approved_by", "approved_at", "expires"])
def test_missing_key(tmp_path, key):
    msg = error(tmp_path, GOOD + entry(**{key: _DROP}))
    label = "entry [2]" if key == "id" else "entry [2] (id EX-9)"
    assert msg == f"{label}: {key}: required key is missing"


def test_null_is_missing(tmp_path):
    assert error(tmp_path, entry(justification="")) == "entry [0] (id EX-9): justification: required key is missing"


@pytest.mark.parametrize(("kw", "key", "fragment"), [
    ({"approved_at": "next week"}, "approved_at", "not a date or time"),
    ({"expires": "2026-13-01"}, "expires", "not a date or time"),
    ({"expires": "2027-02-30"}, "expires", "not a date or time"),
    ({"approved_at": "2026-11-01T10:00:00"}, "approved_at", "a time needs a time zone"),
    ({"approved_at": "2026-11-01 10:00:00"}, "approved_at", "a time needs a time zone"),
    ({"expires": 20270101}, "expires", "must be a date"),
    ({"expires": "[2027-01-01]"}, "expires", "must be a date"),
])
def test_bad_dates(tmp_path, kw, key, fragment):
    msg = error(tmp_path, entry(**kw))
    assert msg.startswith(f"entry [0] (id EX-9): {key}: "), msg
    assert fragment in msg


def test_duplicate_id_names_both_entries(tmp_path):
    msg = error(tmp_path, GOOD + entry(id="ex-1"))
    assert msg == "entry [2] (id ex-1): id: duplicate id: entry [0] has id EX-1 (ids are compared ignoring case)"


@pytest.mark.parametrize("bad", ["'EX 1'", "'=cmd()'", "'-lead'", "'" + "E" * 65 + "'", "7", "'EX-1\\n'"])
def test_bad_ids(tmp_path, bad):
    msg = error(tmp_path, entry(id=bad))
    assert msg.startswith("entry [0]: id: "), msg


def test_unknown_control_id(tmp_path):
    msg = error(tmp_path, entry(control_id="CC8.1-99"))
    assert msg.startswith("entry [0] (id EX-9): control_id: unknown control 'CC8.1-99' (known: CC8.1-01"), msg


def test_both_change_id_and_repo(tmp_path):
    msg = error(tmp_path, entry(repo="acme/payments-api"))
    assert msg == ("entry [0] (id EX-9): change_id/repo: give exactly one: change_id for a change's control, "
                   "repo for a repository control; got both")


def test_neither_change_id_nor_repo(tmp_path):
    msg = error(tmp_path, entry(change_id=_DROP))
    assert msg.endswith("change_id/repo: give exactly one: change_id for a change's control, repo for a "
                        "repository control; got neither")


def test_a_repository_control_needs_repo(tmp_path):
    msg = error(tmp_path, entry(control_id="CC8.1-11"))
    assert msg == ("entry [0] (id EX-9): control_id: CC8.1-11 is a repository control: name the repository "
                   "with repo, not change_id")


def test_a_change_control_needs_change_id(tmp_path):
    msg = error(tmp_path, entry(change_id=_DROP, repo="acme/payments-api"))
    assert msg == ("entry [0] (id EX-9): control_id: CC8.1-04 is a change control: name the change with "
                   "change_id, not repo")


@pytest.mark.parametrize(("kw", "key"), [
    ({"change_id": "payments-api#12"}, "change_id"),
    ({"change_id": "acme/payments-api#x"}, "change_id"),
    ({"change_id": "acme/payments-api@abc"}, "change_id"),
    ({"change_id": _DROP, "repo": "acme", "control_id": "CC8.1-11"}, "repo"),
])
def test_bad_change_ids_and_repos(tmp_path, kw, key):
    assert error(tmp_path, entry(**kw)).startswith(f"entry [0] (id EX-9): {key}: not a")


def test_a_direct_push_change_id_is_accepted(tmp_path):
    reg = load_register(write(tmp_path, entry(change_id="acme/web-frontend@" + "c6" * 20, control_id="CC8.1-10")))
    assert reg.entries[0].change_id == "acme/web-frontend@" + "c6" * 20


@pytest.mark.parametrize(("kw", "key"), [({"justification": "'   '"}, "justification"),
                                         ({"approved_by": "[alice]"}, "approved_by"),
                                         ({"control_id": "4"}, "control_id")])
def test_wrong_type_or_blank(tmp_path, kw, key):
    assert error(tmp_path, entry(**kw)).startswith(f"entry [0] (id EX-9): {key}: must")


def test_duplicate_yaml_key_is_an_error(tmp_path):
    assert "duplicate key 'expires'" in error(tmp_path, entry() + "  expires: 2027-03-01\n")


def test_nothing_from_the_file_is_echoed_at_length(tmp_path):
    msg = error(tmp_path, entry(approved_at="'" + "x" * 500 + "'"))
    assert len(msg) < 200


def test_register_label_is_relative_to_the_project_root():
    assert register_label(str(ROOT / "include" / "config" / "exceptions.yaml")) == "include/config/exceptions.yaml"
    assert register_label("/etc/ccwatch/exceptions.yaml") == "/etc/ccwatch/exceptions.yaml"


def test_configured_register_is_none_without_the_key(tmp_path):
    from dataclasses import replace

    s = make_settings()
    assert s.exceptions is None and configured_register(s) is None
    path = write(tmp_path, GOOD)
    assert [e.id for e in configured_register(replace(s, exceptions=str(path))).entries] == ["EX-1", "EX-2"]
