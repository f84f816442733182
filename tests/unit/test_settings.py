"""Configuration validation (CONTROLS.md, "Configuration file").

Every case starts from the bundled demo config, mutates one thing, writes it to a temp
file and asserts that loading it raises ConfigError whose message starts with
``<file>: <exact dotted key>: `` - the contract operators rely on to find the bad line.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ccwatch import settings as settings_mod
from ccwatch.config_schema import Checker
from ccwatch.settings import (
    ConfigError,
    EmergencyConfig,
    JiraConfig,
    ReviewConfig,
    SodConfig,
    StandardChangeConfig,
    WindowsConfig,
    ccwatch_home,
    config_path,
    load_settings,
)

from tests.helpers.paths import ROOT

DEMO_CONFIG = ROOT / "include" / "config" / "ccwatch.yaml"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))


def demo_doc() -> dict:
    return copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text()))


def _parent(doc, path):
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


def delete(*path):
    def mutate(doc):
        del _parent(doc, path)[path[-1]]

    return mutate


def put(*path_and_value):
    *path, value = path_and_value

    def mutate(doc):
        _parent(doc, path)[path[-1]] = value

    return mutate


def replace_doc(value):
    def mutate(doc):
        doc.clear()
        return value

    return mutate


def write_config(tmp_path: Path, mutate=None, name: str = "ccwatch.yaml") -> Path:
    doc = demo_doc()
    if mutate is not None:
        replaced = mutate(doc)
        if replaced is not None:
            doc = replaced
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def assert_config_error(path: Path, key: str, fragment: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert fragment in message, message
    return message


# --- required keys -------------------------------------------------------------

MISSING = [
    ("lookback_days", delete("lookback_days")),
    ("github", delete("github")),
    ("github.repositories", delete("github", "repositories")),
    ("github.repositories[0].repo", delete("github", "repositories", 0, "repo")),
    ("github.repositories[0].production_branch", delete("github", "repositories", 0, "production_branch")),
    (
        "github.repositories[0].production_environments",
        delete("github", "repositories", 0, "production_environments"),
    ),
    ("github.repositories[1].repo", delete("github", "repositories", 1, "repo")),
    ("jira", delete("jira")),
    ("jira.project_keys", delete("jira", "project_keys")),
    ("jira.fields", delete("jira", "fields")),
    ("jira.fields.business_justification", delete("jira", "fields", "business_justification")),
    ("jira.fields.risk_assessment", delete("jira", "fields", "risk_assessment")),
    ("jira.fields.testing_plan", delete("jira", "fields", "testing_plan")),
    ("jira.fields.postmortem", delete("jira", "fields", "postmortem")),
    ("jira.approval_statuses", delete("jira", "approval_statuses")),
    ("people", delete("people")),
    ("people.change_approvers", delete("people", "change_approvers")),
    ("people.authorized_deployers", delete("people", "authorized_deployers")),
    ("slack", delete("slack")),
    ("slack.channel", delete("slack", "channel")),
    # `key:` with no value is YAML null: as missing as no key at all
    ("lookback_days", put("lookback_days", None)),
    ("jira.fields.testing_plan", put("jira", "fields", "testing_plan", None)),
    ("people.identities[0].name", delete("people", "identities", 0, "name")),
]


@pytest.mark.parametrize(("key", "mutate"), MISSING, ids=[f"missing:{k}" for k, _ in MISSING])
def test_missing_required_key(tmp_path, key, mutate):
    assert_config_error(write_config(tmp_path, mutate), key, "required key is missing")


def test_empty_mapping_of_fields_names_the_first_missing_field(tmp_path):
    path = write_config(tmp_path, put("jira", "fields", {}))
    assert_config_error(path, "jira.fields.business_justification", "required key is missing")


# --- unknown keys ----------------------------------------------------------------

UNKNOWN = [
    (
        "lookback_dayz",
        put("lookback_dayz", 30),
        "evidence, exceptions, github, jira, lookback_days, people, review, slack, sod, windows",
    ),
    ("github.repos", put("github", "repos", []), "concurrency, conn_id, deploy_automation, repositories"),
    (
        "github.repositories[0].branch",
        put("github", "repositories", 0, "branch", "main"),
        "production_branch, production_environments, repo, required_checks, staging_environments",
    ),
    ("jira.fields.owner", put("jira", "fields", "owner", "Owner"), "business_justification, postmortem"),
    ("jira.emergency.label", put("jira", "emergency", "label", ["x"]), "issue_types, labels, priorities"),
    ("jira.standard_change.issue_types", put("jira", "standard_change", "issue_types", ["x"]), "labels"),
    ("people.identities[2].email", put("people", "identities", 2, "email", "c@x"), "github, jira, name"),
    ("review.min_approval", put("review", "min_approval", 2), "allow_stale_approval, min_approvals"),
    ("sod.self_merge", put("sod", "self_merge", True), "allow_self_merge"),
    (
        "windows.grace_hours",
        put("windows", "grace_hours", 1),
        "deploy_grace_hours, emergency_retro_days, pir_days, postmortem_days",
    ),
    ("slack.token", put("slack", "token", "xoxb-should-not-be-here"), "channel, conn_id"),
]


@pytest.mark.parametrize(("key", "mutate", "allowed"), UNKNOWN, ids=[f"unknown:{k}" for k, _, _ in UNKNOWN])
def test_unknown_key_lists_allowed_keys(tmp_path, key, mutate, allowed):
    message = assert_config_error(write_config(tmp_path, mutate), key, "unknown key")
    assert f"allowed here: {allowed}" in message


def test_unknown_key_message_does_not_echo_its_value(tmp_path):
    message = assert_config_error(
        write_config(tmp_path, put("slack", "token", "xoxb-should-not-be-here")), "slack.token", "unknown key"
    )
    assert "xoxb-should-not-be-here" not in message


# --- wrong types -----------------------------------------------------------------

WRONG_TYPE = [
    ("lookback_days", put("lookback_days", "90"), "must be an integer, got str '90'"),
    ("lookback_days", put("lookback_days", True), "must be an integer, got boolean True"),
    ("lookback_days", put("lookback_days", 1.5), "must be an integer, got float 1.5"),
    ("review.min_approvals", put("review", "min_approvals", True), "must be an integer, got boolean True"),
    ("windows.pir_days", put("windows", "pir_days", "14"), "must be an integer"),
    ("review.allow_stale_approval", put("review", "allow_stale_approval", "no"), "must be true or false"),
    ("sod.allow_self_merge", put("sod", "allow_self_merge", 1), "must be true or false, got int 1"),
    ("jira.project_keys", put("jira", "project_keys", 5), "must be a list, got int 5"),
    ("jira.approval_statuses", put("jira", "approval_statuses", "Approved"), "must be a list, got str"),
    (
        "github.repositories[0].production_environments",
        put("github", "repositories", 0, "production_environments", "production"),
        "must be a list",
    ),
    (
        "github.repositories",
        put("github", "repositories", {"repo": "acme/x"}),
        "must be a list, got a mapping",
    ),
    ("github", put("github", [{"repo": "acme/x"}]), "must be a mapping, got a list"),
    ("jira.fields", put("jira", "fields", ["Business Justification"]), "must be a mapping, got a list"),
    ("review", put("review", [1]), "must be a mapping, got a list"),
    (
        "github.repositories[1]",
        put("github", "repositories", 1, "acme/web-frontend"),
        "must be a mapping, got str",
    ),
    ("jira.project_keys[1]", put("jira", "project_keys", ["PAY", 5]), "must be a string, got int 5"),
    (
        "people.change_approvers[1]",
        put("people", "change_approvers", ["a@x", ["b@x"]]),
        "must be a string, got a list",
    ),
    ("jira.required_fields[0]", put("jira", "required_fields", [True]), "must be a string, got boolean True"),
    (
        "github.repositories[0].production_branch",
        put("github", "repositories", 0, "production_branch", 7),
        "string",
    ),
    ("slack.channel", put("slack", "channel", 123), "must be a string, got int 123"),
    (
        "jira.fields.postmortem",
        put("jira", "fields", "postmortem", {"name": "x"}),
        "must be a string, got a mapping",
    ),
    ("people.identities[0].github", put("people", "identities", 0, "github", 42), "must be a string"),
]


@pytest.mark.parametrize(
    ("key", "mutate", "fragment"), WRONG_TYPE, ids=[f"type:{k}:{i}" for i, (k, _, _) in enumerate(WRONG_TYPE)]
)
def test_wrong_type(tmp_path, key, mutate, fragment):
    assert_config_error(write_config(tmp_path, mutate), key, fragment)


BLANK = [
    ("github.repositories[0].production_branch", put("github", "repositories", 0, "production_branch", "  ")),
    ("slack.channel", put("slack", "channel", "")),
    ("jira.fields.risk_assessment", put("jira", "fields", "risk_assessment", "")),
]


@pytest.mark.parametrize(("key", "mutate"), BLANK, ids=[k for k, _ in BLANK])
def test_blank_string(tmp_path, key, mutate):
    assert_config_error(write_config(tmp_path, mutate), key, "must not be blank")


# --- empty lists where one item is needed ----------------------------------------

EMPTY = [
    ("github.repositories", ("github", "repositories")),
    (
        "github.repositories[0].production_environments",
        ("github", "repositories", 0, "production_environments"),
    ),
    (
        "github.repositories[1].production_environments",
        ("github", "repositories", 1, "production_environments"),
    ),
    ("jira.project_keys", ("jira", "project_keys")),
    ("jira.approval_statuses", ("jira", "approval_statuses")),
    ("people.change_approvers", ("people", "change_approvers")),
    ("people.authorized_deployers", ("people", "authorized_deployers")),
]


@pytest.mark.parametrize(("key", "path"), EMPTY, ids=[k for k, _ in EMPTY])
def test_empty_list_where_one_item_is_required(tmp_path, key, path):
    assert_config_error(write_config(tmp_path, put(*path, [])), key, "must list at least one item")


@pytest.mark.parametrize(
    "path",
    [
        ("github", "deploy_automation"),
        ("github", "repositories", 0, "staging_environments"),
        ("github", "repositories", 0, "required_checks"),
        ("jira", "required_fields"),
        ("people", "emergency_approvers"),
        ("people", "identities"),
        ("jira", "emergency", "labels"),
    ],
    ids=lambda p: ".".join(map(str, p)),
)
def test_optional_lists_may_be_empty(tmp_path, path):
    s = load_settings(write_config(tmp_path, put(*path, [])))
    assert s.lookback_days == 90


# --- semantic checks -------------------------------------------------------------

SEMANTIC = [
    (
        "jira.ticket_key_pattern",
        put("jira", "ticket_key_pattern", r"\b([A-Z]+-\d+\b"),
        "invalid regular expression",
    ),
    ("jira.ticket_key_pattern", put("jira", "ticket_key_pattern", "[A-Z"), "invalid regular expression"),
    (
        "jira.ticket_key_pattern",
        put("jira", "ticket_key_pattern", r"([A-Z]+)-(\d+)"),
        "at most one capturing group",
    ),
    (
        "jira.ticket_key_pattern",
        put("jira", "ticket_key_pattern", r"(?P<project>[A-Z]+)-(?P<num>\d+)"),
        "at most one capturing group",
    ),
    (
        "github.repositories[0].repo",
        put("github", "repositories", 0, "repo", "payments-api"),
        "must be 'owner/name'",
    ),
    (
        "github.repositories[1].repo",
        put("github", "repositories", 1, "repo", "acme/web frontend"),
        "owner/name",
    ),
    ("github.repositories[0].repo", put("github", "repositories", 0, "repo", "acme/x/y"), "owner/name"),
    (
        "github.repositories[0].repo",
        put("github", "repositories", 0, "repo", "https://github.com/acme/payments-api"),
        "owner/name",
    ),
    (
        "github.repositories[1].repo",
        put("github", "repositories", 1, "repo", "acme/payments-api"),
        "listed twice",
    ),
    # GitHub owner and repository names are case-insensitive: the same repository twice
    (
        "github.repositories[1].repo",
        put("github", "repositories", 1, "repo", "ACME/Payments-API"),
        "listed twice",
    ),
    ("jira.project_keys[0]", put("jira", "project_keys", ["pay", "WEB"]), "not a Jira project key: 'pay'"),
    ("jira.project_keys[2]", put("jira", "project_keys", ["PAY", "WEB", "OPS-1"]), "not a Jira project key"),
    ("jira.project_keys[1]", put("jira", "project_keys", ["PAY", "9WEB"]), "not a Jira project key"),
    ("lookback_days", put("lookback_days", 0), "must be at least 1"),
    ("lookback_days", put("lookback_days", -5), "must be at least 1"),
    ("review.min_approvals", put("review", "min_approvals", 0), "must be at least 1"),
    ("review.min_approvals", put("review", "min_approvals", -1), "must be at least 1"),
    ("windows.deploy_grace_hours", put("windows", "deploy_grace_hours", -1), "must not be negative"),
    ("windows.pir_days", put("windows", "pir_days", -14), "must not be negative"),
    ("windows.emergency_retro_days", put("windows", "emergency_retro_days", -3), "must not be negative"),
    ("windows.postmortem_days", put("windows", "postmortem_days", -7), "must not be negative"),
    (
        "people.identities[0]",
        put("people", "identities", 0, {"name": "Alice Approver"}),
        "github login or a jira",
    ),
    (
        "people.identities[3]",
        put("people", "identities", 3, {"name": "Erin Manager", "github": None, "jira": None}),
        "github login or a jira",
    ),
]


@pytest.mark.parametrize(
    ("key", "mutate", "fragment"), SEMANTIC, ids=[f"{k}:{i}" for i, (k, _, _) in enumerate(SEMANTIC)]
)
def test_semantic_check(tmp_path, key, mutate, fragment):
    assert_config_error(write_config(tmp_path, mutate), key, fragment)


def test_zero_windows_are_allowed(tmp_path):
    s = load_settings(write_config(tmp_path, put("windows", {"pir_days": 0, "deploy_grace_hours": 0})))
    assert s.windows.pir_days == 0 and s.windows.deploy_grace_hours == 0


def test_pattern_without_group_is_allowed(tmp_path):
    s = load_settings(write_config(tmp_path, put("jira", "ticket_key_pattern", r"\b[A-Z][A-Z0-9]+-\d+\b")))
    assert s.jira.ticket_key_pattern == r"\b[A-Z][A-Z0-9]+-\d+\b"


# --- the file itself -------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


def test_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank-lines", "comment-only"]
)
def test_empty_file_names_the_first_required_key(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert_config_error(path, "lookback_days", "required key is missing")


@pytest.mark.parametrize(
    "content",
    [
        b"lookback_days: 90\ngithub: [unclosed\n",
        b"lookback_days: 90\n\tgithub: {}\n",
        b"key: 'unterminated\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
    ids=["unclosed-flow", "tab-indent", "unterminated-quote", "binary"],
)
def test_non_yaml_file(tmp_path, content):
    path = tmp_path / "broken.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: not valid YAML"), str(info.value)


@pytest.mark.parametrize(
    ("content", "got"),
    [("- a\n- b\n", "got a list"), ("just some words\n", "got str"), ("42\n", "got int 42")],
    ids=["list", "plain-text", "number"],
)
def test_document_that_is_not_a_mapping(tmp_path, content, got):
    path = tmp_path / "odd.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: (top level): must be a mapping"), message
    assert got in message


def test_duplicate_key_is_an_error_not_a_silent_override(tmp_path):
    text = DEMO_CONFIG.read_text() + "\nlookback_days: 30\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "duplicate key 'lookback_days'" in message, message


def test_long_wrong_value_is_shortened_in_the_message(tmp_path):
    secret_like = "x" * 500
    message = assert_config_error(
        write_config(tmp_path, put("lookback_days", secret_like)), "lookback_days", "str"
    )
    assert secret_like not in message and len(message) < len(str(tmp_path)) + 200


def test_unreadable_file(tmp_path, monkeypatch):
    path = write_config(tmp_path)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # chmod 0 does not stop root
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: cannot read the config file: Permission denied")


def test_yaml_anchors_and_merge_keys_still_work(tmp_path):
    text = (
        DEMO_CONFIG.read_text()
        .replace(
            "review: {min_approvals: 1, allow_stale_approval: false}",
            "review: {<<: {min_approvals: 2}, allow_stale_approval: true}",
        )
        .replace(
            "change_approvers: [alice@acme.example, erin@acme.example]",
            "change_approvers: &ap [alice@x, erin@x]",
        )
    )
    text = text.replace("emergency_approvers: [cto@acme.example]", "emergency_approvers: *ap")
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    s = load_settings(path)
    assert s.review == ReviewConfig(min_approvals=2, allow_stale_approval=True)
    assert s.people.emergency_approvers == s.people.change_approvers == ("alice@x", "erin@x")


# --- valid files and defaults ----------------------------------------------------


def test_demo_config_loads_with_its_values():
    s = load_settings(DEMO_CONFIG)
    assert s.lookback_days == 90
    assert [r.repo for r in s.github.repositories] == ["acme/payments-api", "acme/web-frontend"]
    pay = s.repo("acme/payments-api")
    assert (pay.owner, pay.name, pay.production_branch) == ("acme", "payments-api", "main")
    assert pay.staging_environments == ("staging",) and pay.required_checks == ("test", "build")
    assert s.repo("acme/web-frontend").staging_environments == ()
    assert s.jira.project_keys == ("PAY", "WEB", "OPS")
    assert s.jira.fields.postmortem == "Post-Mortem"
    assert s.jira.emergency.issue_types == ("Emergency Change",) and s.jira.emergency.priorities == ()
    assert s.jira.standard_change.labels == ("standard-change",)
    assert s.people.emergency_approvers == ("cto@acme.example",)
    assert [i.name for i in s.people.identities].count("Carol Dev") == 2
    assert s.people.identities[2].jira is None
    assert s.slack.channel == "#compliance-alerts"
    assert s.source_path == str(DEMO_CONFIG)
    import hashlib

    assert s.sha256 == hashlib.sha256(DEMO_CONFIG.read_bytes()).hexdigest()
    with pytest.raises(KeyError):
        s.repo("acme/unknown")


def test_repo_lookup_answers_from_each_settings_own_repositories():
    import dataclasses

    s = load_settings(DEMO_CONFIG)
    pay, web = s.github.repositories
    assert s.repo("acme/web-frontend") is web  # asked once: the lookup is built
    renamed = dataclasses.replace(web, repo="acme/web-v2")
    other = dataclasses.replace(s, github=dataclasses.replace(s.github, repositories=(pay, renamed)))
    assert other.repo("acme/web-v2") is renamed and s.repo("acme/web-frontend") is web
    with pytest.raises(KeyError, match="acme/web-frontend"):
        other.repo("acme/web-frontend")
    with pytest.raises(KeyError):
        s.repo("acme/web-v2")


def _strip_optional(doc):
    for key in ("review", "sod", "windows"):
        del doc[key]
    del doc["github"]["conn_id"], doc["github"]["deploy_automation"]
    for repo in doc["github"]["repositories"]:
        repo.pop("staging_environments", None)
        repo.pop("required_checks", None)
    for key in ("conn_id", "ticket_key_pattern", "required_fields", "emergency", "standard_change"):
        del doc["jira"][key]
    del doc["people"]["emergency_approvers"], doc["people"]["identities"]
    del doc["slack"]["conn_id"]


def test_defaults_fill_every_optional_key(tmp_path):
    s = load_settings(write_config(tmp_path, _strip_optional))
    assert s.review == ReviewConfig() == ReviewConfig(min_approvals=1, allow_stale_approval=False)
    assert s.sod == SodConfig(allow_self_merge=False)
    assert s.windows == WindowsConfig(
        deploy_grace_hours=72, pir_days=14, emergency_retro_days=3, postmortem_days=7
    )
    assert s.jira.emergency == EmergencyConfig(labels=("emergency",), issue_types=(), priorities=())
    assert s.jira.standard_change == StandardChangeConfig(labels=())
    assert s.jira.ticket_key_pattern == JiraConfig.ticket_key_pattern == r"\b([A-Z][A-Z0-9]+-\d+)\b"
    assert s.jira.required_fields == ()
    assert (s.github.conn_id, s.jira.conn_id, s.slack.conn_id) == (
        "github_default",
        "jira_default",
        "slack_api_default",
    )
    assert s.github.deploy_automation == ()
    assert all(r.staging_environments == () and r.required_checks == () for r in s.github.repositories)
    assert s.people.emergency_approvers == () and s.people.identities == ()


def test_partial_sections_keep_the_other_defaults(tmp_path):
    def mutate(doc):
        doc["review"] = {"min_approvals": 2}
        doc["windows"] = {"pir_days": 30}
        doc["jira"]["emergency"] = {"issue_types": ["Hotfix"]}
        doc["sod"] = None  # `sod:` with nothing under it

    s = load_settings(write_config(tmp_path, mutate))
    assert s.review == ReviewConfig(min_approvals=2, allow_stale_approval=False)
    assert s.windows == WindowsConfig(pir_days=30) and s.windows.deploy_grace_hours == 72
    assert s.jira.emergency == EmergencyConfig(labels=("emergency",), issue_types=("Hotfix",), priorities=())
    assert s.sod == SodConfig()


def test_custom_conn_ids_are_kept(tmp_path):
    def mutate(doc):
        doc["github"]["conn_id"] = "ghe_prod"
        doc["jira"]["conn_id"] = "jira_cloud"
        doc["slack"]["conn_id"] = "slack_sec"

    s = load_settings(write_config(tmp_path, mutate))
    assert (s.github.conn_id, s.jira.conn_id, s.slack.conn_id) == ("ghe_prod", "jira_cloud", "slack_sec")


def test_settings_are_frozen():
    s = load_settings(DEMO_CONFIG)
    with pytest.raises(AttributeError):
        s.lookback_days = 1  # type: ignore[misc]


# --- environment -------------------------------------------------------------------


def test_ccwatch_config_env_var_is_honoured(tmp_path, monkeypatch):
    path = write_config(tmp_path, put("lookback_days", 30), name="elsewhere.yaml")
    monkeypatch.setenv("CCWATCH_CONFIG", str(path))
    assert config_path() == path
    s = load_settings()
    assert s.lookback_days == 30 and s.source_path == str(path)


def test_ccwatch_config_env_var_pointing_at_a_bad_file(tmp_path, monkeypatch):
    path = write_config(tmp_path, delete("slack", "channel"), name="bad.yaml")
    monkeypatch.setenv("CCWATCH_CONFIG", str(path))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"{path}: slack.channel: ")


def test_config_defaults_to_the_bundled_file(monkeypatch):
    monkeypatch.delenv("CCWATCH_CONFIG", raising=False)
    assert config_path() == DEMO_CONFIG == settings_mod.DEFAULT_CONFIG
    assert load_settings().source_path == str(DEMO_CONFIG)


def test_message_for_the_default_location_names_the_file_by_name():
    checker = Checker(settings_mod.DEFAULT_CONFIG.name)
    assert str(checker.fail("jira.fields", "x")) == "ccwatch.yaml: jira.fields: x"


def test_ccwatch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CCWATCH_HOME", str(tmp_path / "out"))
    assert ccwatch_home() == tmp_path / "out"
    monkeypatch.delenv("CCWATCH_HOME")
    assert ccwatch_home() == ROOT / "data"
    monkeypatch.setenv("CCWATCH_HOME", "")
    assert ccwatch_home() == ROOT / "data"


# --- python -m ccwatch check-config -----------------------------------------------


def _cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "CCWATCH_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "include"), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.run(
        [PYTHON, "-m", "ccwatch", "check-config", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_config_accepts_the_demo_config():
    proc = _cli(str(DEMO_CONFIG))
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "2 repositories" in proc.stdout


def test_check_config_without_argument_uses_the_default():
    proc = _cli()
    assert proc.returncode == 0, proc.stderr
    assert str(DEMO_CONFIG) in proc.stdout


def test_check_config_rejects_a_bad_file_naming_the_key(tmp_path):
    path = write_config(tmp_path, put("github", "repositories", 0, "production_environments", []))
    proc = _cli(str(path))
    assert proc.returncode == 2
    assert (
        f"{path}: github.repositories[0].production_environments: must list at least one item" in proc.stderr
    )
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr


def test_check_config_honours_ccwatch_config(tmp_path):
    path = write_config(tmp_path, put("review", "min_approvals", 0))
    proc = _cli(env_extra={"CCWATCH_CONFIG": str(path)})
    assert proc.returncode == 2 and "review.min_approvals" in proc.stderr


@pytest.mark.parametrize("content", [None, b"a: [\n"], ids=["missing", "not-yaml"])
def test_check_config_on_missing_or_broken_file(tmp_path, content):
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_bytes(content)
    proc = _cli(str(path))
    assert proc.returncode == 2 and str(path) in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value, message", [
    ("ftp://tsa.example/tsr", "must be an http:// or https:// URL"),
    ("https://user:pw@tsa.example/tsr", "must not carry user:password@"),
    ("not a url", "must be an http:// or https:// URL"),
])
def test_evidence_timestamp_url_is_checked(tmp_path, value, message):
    from ccwatch.settings import ConfigError, load_settings

    from tests.helpers.paths import CONFIG

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.read_text() + f"\nevidence:\n  timestamp_url: {value!r}\n")
    with pytest.raises(ConfigError, match=f"evidence.timestamp_url: {message}"):
        load_settings(path)


def test_evidence_trust_keys_load(tmp_path):
    from ccwatch.settings import ConfigError, load_settings

    from tests.helpers.paths import CONFIG

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.read_text() + "\nevidence:\n  signing_conn_id: ccwatch_signing\n"
                    "  timestamp_url: https://tsa.example/tsr\n")
    s = load_settings(path)
    assert (s.evidence.signing_conn_id, s.evidence.timestamp_url) == ("ccwatch_signing", "https://tsa.example/tsr")
    path.write_text(CONFIG.read_text() + "\nevidence:\n  signing_conn_id: 3\n")
    with pytest.raises(ConfigError, match="evidence.signing_conn_id: must be a string"):
        load_settings(path)
# --- exceptions: the register's path (r2; the file itself: tests/unit/controls/test_register.py) ----


def test_exceptions_path_is_relative_to_the_project_root_not_the_config_folder(tmp_path):
    s = load_settings(write_config(tmp_path, put("exceptions", "include/config/exceptions.yaml")))
    assert s.exceptions == str(ROOT / "include" / "config" / "exceptions.yaml")


def test_exceptions_absolute_path_is_kept(tmp_path):
    s = load_settings(write_config(tmp_path, put("exceptions", str(tmp_path / "risk.yaml"))))
    assert s.exceptions == str(tmp_path / "risk.yaml")


def test_exceptions_is_optional(tmp_path):
    def mutate(doc):
        doc.pop("exceptions", None)

    assert load_settings(write_config(tmp_path, mutate)).exceptions is None


@pytest.mark.parametrize(("value", "fragment"), [(["a.yaml"], "must be a string"), ("  ", "must not be blank"),
                                                 (True, "must be a string")])
def test_exceptions_must_be_a_path(tmp_path, value, fragment):
    assert_config_error(write_config(tmp_path, put("exceptions", value)), "exceptions", fragment)


# --- (r2) required_checks entries pinned to a GitHub App: {name, app} next to plain names ----------


def test_required_checks_may_pin_an_app(tmp_path):
    checks = ["test", {"name": "build", "app": "github-actions"}]
    s = load_settings(write_config(tmp_path, put("github", "repositories", 0, "required_checks", checks)))
    pay = s.github.repositories[0]
    assert pay.required_checks == ("test", "build")  # every name, plain or pinned, is judged
    assert pay.required_check_apps == (("build", "github-actions"),)


def test_plain_required_checks_pin_nothing(tmp_path):
    s = load_settings(write_config(tmp_path))
    assert s.github.repositories[0].required_check_apps == ()


@pytest.mark.parametrize(("entry", "key", "fragment"), [
    ({"name": "build"}, "required_checks[1].app", "required key is missing"),
    ({"app": "github-actions"}, "required_checks[1].name", "required key is missing"),
    ({"name": "build", "app": "github-actions", "id": 15368}, "required_checks[1].id",
     "unknown key (allowed here: app, name)"),
    ({"name": "build", "app": 15368}, "required_checks[1].app", "must be a string"),
    ({"name": "build", "app": "github-actions[bot]"}, "required_checks[1].app",
     "the app's slug (e.g. github-actions), not its bot account github-actions[bot]"),
    ({"name": "build", "app": "GitHub Actions"}, "required_checks[1].app", "not a GitHub App slug"),
    (7, "required_checks[1]", "must be a check name or a mapping {name, app}, got int 7"),
    ("test", "required_checks[1]", "check 'test' is listed twice"),
])
def test_required_check_entry_errors_name_the_key(tmp_path, entry, key, fragment):
    path = write_config(tmp_path, put("github", "repositories", 0, "required_checks", ["test", entry]))
    assert_config_error(path, f"github.repositories[0].{key}", fragment)
