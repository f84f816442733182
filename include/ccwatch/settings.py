"""The ccwatch configuration file (CONTROLS.md, "Configuration file") and output paths.

`load_settings()` reads the YAML named by ``CCWATCH_CONFIG`` (default
``include/config/ccwatch.yaml``), checks every key against the schema below and
returns frozen dataclasses.  Any unknown key, wrong type, missing required key or
invalid regular expression raises :class:`ConfigError` whose message names the file
and the dotted key, e.g. ``ccwatch.yaml: github.repositories[0].repo: required key is missing``.
Credentials never live here: they come from Airflow connections.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ccwatch.config_schema import SCHEMA, Checker, ConfigError, read_yaml

__all__ = ["ConfigError", "Settings", "load_settings", "ccwatch_home", "config_path"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "include" / "config" / "ccwatch.yaml"
MIN_CONCURRENCY, MAX_CONCURRENCY = 1, 32  # github.concurrency


@dataclass(frozen=True)
class RepoConfig:
    repo: str
    production_branch: str
    production_environments: tuple[str, ...]
    staging_environments: tuple[str, ...] = ()
    required_checks: tuple[str, ...] = ()  # every judged name, plain or pinned
    # (r2) (name, app slug) of each ``{name, app}`` entry: only that app's check runs, or statuses
    # its bot account ``<slug>[bot]`` created, count for the name (controls/testing.py)
    required_check_apps: tuple[tuple[str, str], ...] = ()

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]


@dataclass(frozen=True)
class GithubConfig:
    repositories: tuple[RepoConfig, ...]
    conn_id: str = "github_default"
    deploy_automation: tuple[str, ...] = ()
    # repositories fetched at the same time (threads of ingest_github; on Airflow the mapped
    # ingest_github_repo tasks run CCWATCH_GITHUB_CONCURRENCY at a time, see docs/DEPLOYMENT.md)
    concurrency: int = 4


@dataclass(frozen=True)
class JiraFields:
    business_justification: str
    risk_assessment: str
    testing_plan: str
    postmortem: str


@dataclass(frozen=True)
class EmergencyConfig:
    labels: tuple[str, ...] = ("emergency",)
    issue_types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()


@dataclass(frozen=True)
class StandardChangeConfig:
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class JiraConfig:
    project_keys: tuple[str, ...]
    fields: JiraFields
    approval_statuses: tuple[str, ...]
    conn_id: str = "jira_default"
    ticket_key_pattern: str = r"\b([A-Z][A-Z0-9]+-\d+)\b"
    required_fields: tuple[str, ...] = ()
    emergency: EmergencyConfig = field(default_factory=EmergencyConfig)
    standard_change: StandardChangeConfig = field(default_factory=StandardChangeConfig)


@dataclass(frozen=True)
class Identity:
    name: str
    github: str | None = None
    jira: str | None = None


@dataclass(frozen=True)
class PeopleConfig:
    change_approvers: tuple[str, ...]
    authorized_deployers: tuple[str, ...]
    emergency_approvers: tuple[str, ...] = ()
    identities: tuple[Identity, ...] = ()


@dataclass(frozen=True)
class ReviewConfig:
    min_approvals: int = 1
    allow_stale_approval: bool = False


@dataclass(frozen=True)
class SodConfig:
    allow_self_merge: bool = False


@dataclass(frozen=True)
class WindowsConfig:
    deploy_grace_hours: int = 72
    pir_days: int = 14
    emergency_retro_days: int = 3
    postmortem_days: int = 7


@dataclass(frozen=True)
class SlackConfig:
    channel: str
    conn_id: str = "slack_api_default"


@dataclass(frozen=True)
class EvidenceConfig:
    """Retention of the evidence archives (None keeps every archive forever), and the trust anchors of
    the manifest (r2): the Airflow connection holding the Ed25519 signing key, the RFC 3161 TSA."""

    retention_days: int | None = None
    keep_latest: int = 30
    signing_conn_id: str | None = None
    timestamp_url: str | None = None


@dataclass(frozen=True)
class Settings:
    lookback_days: int
    github: GithubConfig
    jira: JiraConfig
    people: PeopleConfig
    slack: SlackConfig
    review: ReviewConfig = field(default_factory=ReviewConfig)
    sod: SodConfig = field(default_factory=SodConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    # (r2) the exceptions register's path, resolved (``exceptions``: absolute, or relative to the
    # project root); None: no register.  controls/register.py reads and checks the file.
    exceptions: str | None = None
    source_path: str = ""
    sha256: str = ""

    @cached_property
    def _repos(self) -> dict[str, RepoConfig]:
        # a dict built once (the evidence step asks several times per change of a 500-repository org);
        # setdefault keeps the first entry of a name, as the former linear search did
        out: dict[str, RepoConfig] = {}
        for r in self.github.repositories:
            out.setdefault(r.repo, r)
        return out

    def repo(self, name: str) -> RepoConfig:
        try:
            return self._repos[name]
        except KeyError:
            raise KeyError(name) from None


def config_path() -> Path:
    return Path(os.environ.get("CCWATCH_CONFIG") or DEFAULT_CONFIG)


def ccwatch_home() -> Path:
    """Where outputs go: ``CCWATCH_HOME`` or ``<project>/data``."""
    return Path(os.environ.get("CCWATCH_HOME") or PROJECT_ROOT / "data")


DEFAULT_ALERT_CHANNEL = "#compliance-alerts"
ALERT_CHANNEL_ENV = "CCWATCH_ALERT_CHANNEL"


def alert_target(path: str | os.PathLike | None = None) -> tuple[str, str]:
    """(Slack connection id, channel) for an alert that must go out even when the config file does
    not load: ``slack.conn_id`` and ``slack.channel`` read leniently from the file when they are
    strings there, else ``slack_api_default`` and ``CCWATCH_ALERT_CHANNEL`` (default
    ``#compliance-alerts``).  Never raises."""
    conn_id = SlackConfig.conn_id
    channel = os.environ.get(ALERT_CHANNEL_ENV, "").strip() or DEFAULT_ALERT_CHANNEL
    try:
        doc = yaml.safe_load(Path(path or config_path()).read_bytes())
        slack = doc.get("slack") if isinstance(doc, dict) else None
    except Exception:  # noqa: BLE001 - a file that cannot be read or parsed: the defaults
        slack = None
    if isinstance(slack, dict):
        if isinstance(slack.get("conn_id"), str) and slack["conn_id"].strip():
            conn_id = slack["conn_id"].strip()
        if isinstance(slack.get("channel"), str) and slack["channel"].strip():
            channel = slack["channel"].strip()
    return conn_id, channel


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    p = Path(path) if path else config_path()
    checker = Checker(p.name if p.parent == DEFAULT_CONFIG.parent else str(p))
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found (set CCWATCH_CONFIG to its path)")
    raw_bytes, doc = read_yaml(p, checker.file, "the config file")
    if doc is None:
        doc = {}
    d = checker.check(doc, SCHEMA, "", "")
    s = _build(d, checker)
    return _replace(s, source_path=str(p), sha256=hashlib.sha256(raw_bytes).hexdigest())


def _replace(s: Settings, **kw: Any) -> Settings:
    from dataclasses import replace

    return replace(s, **kw)


def _t(d: dict, key: str, default: tuple = ()) -> tuple:
    return tuple(d.get(key, default))


def _check_timestamp_url(url: str, c: Checker) -> None:
    """An http(s) URL without user:password@ (the config file travels in every evidence archive)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise c.fail("evidence.timestamp_url", "is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise c.fail("evidence.timestamp_url", "must be an http:// or https:// URL of an RFC 3161 time-stamping "
                     "authority")
    if parts.username is not None or parts.password is not None:
        raise c.fail("evidence.timestamp_url", "must not carry user:password@ (the config file is archived with "
                     "the evidence; credentials never belong in it)")


def register_path(value: str) -> Path:
    """The config's ``exceptions`` value as a path: absolute as given, else relative to the project
    root (the folder holding ``include/``: the base of the default ``CCWATCH_CONFIG``), never to the
    worker's current directory."""
    p = Path(value.strip()).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


# GitHub App slugs: lowercase letters, digits and hyphens (the app's name, slugified)
_APP_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


def _required_checks(entries: list, key: str, c: Checker) -> dict[str, tuple]:
    """``required_checks`` entries (names, or ``{name, app}``, r2) -> the RepoConfig fields."""
    names: list[str] = []
    apps: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        name = entry["name"] if isinstance(entry, dict) else entry
        if name in names:
            raise c.fail(f"{key}[{i}]", f"check {name!r} is listed twice")
        names.append(name)
        if isinstance(entry, dict):
            app = entry["app"].strip()
            if app.lower().endswith("[bot]"):
                raise c.fail(f"{key}[{i}].app", f"must be the app's slug (e.g. {app[:-5]}), not its bot account {app}")
            if not _APP_SLUG.fullmatch(app):
                raise c.fail(f"{key}[{i}].app", f"not a GitHub App slug (lowercase letters, digits and hyphens, as in "
                                                f"github.com/apps/<slug>): {app!r}")
            apps.append((name, app))
    return {"required_checks": tuple(names), "required_check_apps": tuple(apps)}


def _build(d: dict, c: Checker) -> Settings:
    if d["lookback_days"] < 1:
        raise c.fail("lookback_days", "must be at least 1")
    repos = []
    seen = set()
    for i, r in enumerate(d["github"]["repositories"]):
        key = f"github.repositories[{i}].repo"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", r["repo"]):
            raise c.fail(key, f"must be 'owner/name', got {r['repo']!r}")
        if r["repo"].lower() in seen:  # GitHub names are case-insensitive
            raise c.fail(key, f"repository {r['repo']!r} is listed twice")
        seen.add(r["repo"].lower())
        repos.append(
            RepoConfig(
                repo=r["repo"],
                production_branch=r["production_branch"],
                production_environments=_t(r, "production_environments"),
                staging_environments=_t(r, "staging_environments"),
                **_required_checks(r.get("required_checks", []), f"github.repositories[{i}].required_checks", c),
            )
        )
    g = d["github"]
    concurrency = g.get("concurrency", GithubConfig.concurrency)
    if not MIN_CONCURRENCY <= concurrency <= MAX_CONCURRENCY:
        raise c.fail("github.concurrency", f"must be between {MIN_CONCURRENCY} and {MAX_CONCURRENCY} "
                                           f"(repositories fetched at the same time), got {concurrency}")
    github = GithubConfig(
        repositories=tuple(repos),
        conn_id=g.get("conn_id", "github_default"),
        deploy_automation=_t(g, "deploy_automation"),
        concurrency=concurrency,
    )
    j = d["jira"]
    pattern = j.get("ticket_key_pattern", JiraConfig.ticket_key_pattern)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise c.fail("jira.ticket_key_pattern", f"invalid regular expression: {exc}") from None
    if compiled.groups > 1:
        raise c.fail("jira.ticket_key_pattern", "must have at most one capturing group (the ticket key)")
    for i, pk in enumerate(j["project_keys"]):
        if not re.fullmatch(r"[A-Z][A-Z0-9_]+", pk):
            raise c.fail(f"jira.project_keys[{i}]", f"not a Jira project key: {pk!r}")
    em = j.get("emergency", {})
    jira = JiraConfig(
        project_keys=_t(j, "project_keys"),
        fields=JiraFields(**j["fields"]),
        approval_statuses=_t(j, "approval_statuses"),
        conn_id=j.get("conn_id", "jira_default"),
        ticket_key_pattern=pattern,
        required_fields=_t(j, "required_fields"),
        emergency=EmergencyConfig(
            labels=_t(em, "labels", EmergencyConfig.labels),
            issue_types=_t(em, "issue_types"),
            priorities=_t(em, "priorities"),
        ),
        standard_change=StandardChangeConfig(labels=_t(j.get("standard_change", {}), "labels")),
    )
    p = d["people"]
    identities = []
    for i, ident in enumerate(p.get("identities", [])):
        if not ident.get("github") and not ident.get("jira"):
            raise c.fail(f"people.identities[{i}]", "needs a github login or a jira identity")
        identities.append(Identity(**ident))
    people = PeopleConfig(
        change_approvers=_t(p, "change_approvers"),
        authorized_deployers=_t(p, "authorized_deployers"),
        emergency_approvers=_t(p, "emergency_approvers"),
        identities=tuple(identities),
    )
    review = ReviewConfig(**d.get("review", {}))
    if review.min_approvals < 1:
        raise c.fail("review.min_approvals", "must be at least 1")
    windows = WindowsConfig(**d.get("windows", {}))
    for k in ("deploy_grace_hours", "pir_days", "emergency_retro_days", "postmortem_days"):
        if getattr(windows, k) < 0:
            raise c.fail(f"windows.{k}", "must not be negative")
    evidence = EvidenceConfig(**d.get("evidence", {}))
    if evidence.retention_days is not None and evidence.retention_days < 1:
        raise c.fail("evidence.retention_days", "must be at least 1 (leave it out to keep archives forever)")
    if evidence.keep_latest < 1:
        raise c.fail("evidence.keep_latest", "must be at least 1")
    if evidence.timestamp_url is not None:
        _check_timestamp_url(evidence.timestamp_url, c)
    return Settings(
        lookback_days=d["lookback_days"],
        github=github,
        jira=jira,
        people=people,
        slack=SlackConfig(**d["slack"]),
        review=review,
        sod=SodConfig(**d.get("sod", {})),
        windows=windows,
        evidence=evidence,
        exceptions=str(register_path(d["exceptions"])) if "exceptions" in d else None,
    )
