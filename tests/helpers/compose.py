"""Shared by the deployment-file tests (tests/system/test_compose.py, test_compose_env.py): paths, the
expected services and secrets, and docker compose's env-file and ${VAR} interpolation rules."""

from __future__ import annotations

import re

import yaml

from tests.helpers.paths import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

AIRFLOW_SERVICES = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
]
LONG_RUNNING = [s for s in AIRFLOW_SERVICES if s != "airflow-init"]
COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
MOUNTS = {  # container path -> host path (relative to the compose file)
    "/opt/airflow/dags": "./dags",
    "/opt/airflow/plugins": "./plugins",
    "/opt/airflow/include": "./include",
    "/opt/airflow/data": "./data",
}
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD",
    "FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "_AIRFLOW_WWW_USER_PASSWORD",
)
CONN_VARS = ["AIRFLOW_CONN_GITHUB_DEFAULT", "AIRFLOW_CONN_JIRA_DEFAULT", "AIRFLOW_CONN_SLACK_API_DEFAULT"]


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


SHARED_ENV = ROOT / "deploy" / "airflow-celery.env"  # shared with scripts/celery_it.py


def env_files(service: dict) -> list[str]:
    files = service.get("env_file") or []
    return [files] if isinstance(files, str) else list(files)


def service_env(service: dict) -> dict:
    """The container's environment as docker compose builds it: the env_files that are part of
    the repo (not the user's .env) in order, later ones overriding, then `environment` on top."""
    merged: dict = {}
    for name in env_files(service):
        if name != ".env":
            merged.update(parse_env_file((ROOT / name).read_text(encoding="utf-8")))
    env = service.get("environment") or {}
    if isinstance(env, list):  # "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return merged | env


def service_mounts(service: dict) -> dict[str, tuple[str, str]]:
    """container path -> (host path or volume name, mode) of the short-syntax volumes."""
    out = {}
    for item in service.get("volumes") or []:
        parts = item.split(":")
        source, target = parts[0], parts[1]
        out[target] = (source, parts[2] if len(parts) > 2 else "rw")
    return out


def interpolate(value: str, variables: dict[str, str]) -> str:
    """docker compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution (no nesting)."""

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        got = variables.get(name, "")
        if op == ":?" and not got:
            raise KeyError(f"{name}: {arg}")
        return got or (arg if op == ":-" else "")

    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", sub, value)


def parse_env_file(text: str) -> dict[str, str]:
    """The subset of docker compose's env-file syntax .env.example uses: KEY=VAL, KEY='literal', comments."""
    values = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        assert m, f"env file line {n} is not KEY=value: {line!r}"
        key, value = m.groups()
        if value.startswith("'"):
            assert value.endswith("'") and len(value) >= 2, f"line {n}: unterminated single quote"
            value = value[1:-1]
        else:
            assert " #" not in value and '"' not in value, f"line {n}: quote JSON/comment values with '...'"
        values[key] = value
    return values


def load_env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE.read_text(encoding="utf-8"))
