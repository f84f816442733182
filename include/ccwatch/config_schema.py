"""The config file's schema and the checker that names the file and dotted key of any mistake.

Kept apart from ``settings.py`` (which builds the typed settings) so the rules of the
file are readable on their own: each entry is ``key -> (kind, required)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The configuration file is unusable; the message names the file and key."""

# Each entry: key -> (kind, required).  kind is a type, a nested schema (dict),
# ("list", item-kind) or a dataclass-building schema via _BUILD.

_STR_LIST = ("list", str)
# (r2) a required check: its name, or {name, app} pinning it to a GitHub App (the app's slug)
_CHECK = ("either", str, {"name": (str, True), "app": (str, True)})

SCHEMA: dict[str, Any] = {
    "lookback_days": (int, True),
    "github": (
        {
            "conn_id": (str, False),
            "repositories": (
                (
                    "list",
                    {
                        "repo": (str, True),
                        "production_branch": (str, True),
                        "production_environments": (_STR_LIST, True),
                        "staging_environments": (_STR_LIST, False),
                        "required_checks": (("list", _CHECK), False),
                    },
                ),
                True,
            ),
            "deploy_automation": (_STR_LIST, False),
            "concurrency": (int, False),
        },
        True,
    ),
    "jira": (
        {
            "conn_id": (str, False),
            "project_keys": (_STR_LIST, True),
            "ticket_key_pattern": (str, False),
            "fields": (
                {
                    "business_justification": (str, True),
                    "risk_assessment": (str, True),
                    "testing_plan": (str, True),
                    "postmortem": (str, True),
                },
                True,
            ),
            "required_fields": (_STR_LIST, False),
            "approval_statuses": (_STR_LIST, True),
            "emergency": (
                {"labels": (_STR_LIST, False), "issue_types": (_STR_LIST, False), "priorities": (_STR_LIST, False)},
                False,
            ),
            "standard_change": ({"labels": (_STR_LIST, False)}, False),
        },
        True,
    ),
    "people": (
        {
            "change_approvers": (_STR_LIST, True),
            "emergency_approvers": (_STR_LIST, False),
            "authorized_deployers": (_STR_LIST, True),
            "identities": (
                ("list", {"name": (str, True), "github": (str, False), "jira": (str, False)}),
                False,
            ),
        },
        True,
    ),
    "review": ({"min_approvals": (int, False), "allow_stale_approval": (bool, False)}, False),
    "sod": ({"allow_self_merge": (bool, False)}, False),
    "windows": (
        {
            "deploy_grace_hours": (int, False),
            "pir_days": (int, False),
            "emergency_retro_days": (int, False),
            "postmortem_days": (int, False),
        },
        False,
    ),
    "slack": ({"conn_id": (str, False), "channel": (str, True)}, True),
    "evidence": (
        {
            "retention_days": (int, False),
            "keep_latest": (int, False),
            "signing_conn_id": (str, False),  # (r2) Airflow connection: password = Ed25519 private key (PEM)
            "timestamp_url": (str, False),  # (r2) RFC 3161 time-stamping authority
        },
        False,
    ),
    "exceptions": (str, False),  # (r2) path of the exceptions register (controls/register.py)
}

# Lists that must hold at least one item when present.
_NON_EMPTY = {
    "github.repositories",
    "jira.project_keys",
    "jira.approval_statuses",
    "people.change_approvers",
    "people.authorized_deployers",
    "github.repositories[].production_environments",
}

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}


class Checker:
    def __init__(self, file_label: str):
        self.file = file_label  # how messages name the file (short for the default config)

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: {key or '(top level)'}: {msg}")

    def check(self, value: Any, kind: Any, key: str, generic: str) -> Any:
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise self.fail(key, f"must be a mapping, got {_describe(value)}")
            out = {}
            for k in value:
                if not isinstance(k, str) or k not in kind:
                    allowed = ", ".join(sorted(kind))
                    raise self.fail(_join(key, str(k)), f"unknown key (allowed here: {allowed})")
            for k, (sub, required) in kind.items():
                if k not in value or value[k] is None:
                    if required:
                        raise self.fail(_join(key, k), "required key is missing")
                    continue
                out[k] = self.check(value[k], sub, _join(key, k), _join(generic, k))
            return out
        if isinstance(kind, tuple) and kind[0] == "either":  # a scalar, or a mapping of the given schema
            if isinstance(value, dict):
                return self.check(value, kind[2], key, generic)
            if not isinstance(value, kind[1]) or isinstance(value, bool):
                raise self.fail(key, f"must be a check name or a mapping {{{', '.join(kind[2])}}}, "
                                     f"got {_describe(value)}")
            return self.check(value, kind[1], key, generic)
        if isinstance(kind, tuple) and kind[0] == "list":
            if not isinstance(value, list):
                raise self.fail(key, f"must be a list, got {_describe(value)}")
            if not value and generic in _NON_EMPTY:
                raise self.fail(key, "must list at least one item")
            return [self.check(v, kind[1], f"{key}[{i}]", f"{generic}[]") for i, v in enumerate(value)]
        # scalar
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.fail(key, f"must be {_TYPE_NAMES[kind]}, got {_describe(value)}")
        if kind is str and not value.strip():
            raise self.fail(key, "must not be blank")
        return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)  # shortened: a misplaced secret or a whole text file must not be echoed
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:30] + '...'}"


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path, name: str, what: str, loader: type[yaml.SafeLoader] = UniqueKeyLoader,
              error: type[ConfigError] = ConfigError) -> tuple[bytes, Any]:
    """(bytes, document) of a YAML file (the config, the exceptions register); an unreadable file or
    invalid YAML raises ``error`` naming the file as ``name`` and what it is (``what``)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise error(f"{name}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return content, yaml.load(content, Loader=loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML: {exc}") from None
