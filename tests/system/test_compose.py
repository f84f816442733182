"""The production deployment files: docker-compose.yaml, Dockerfile, .dockerignore.

No Docker engine runs here, so these tests check what can be checked statically: the compose
file's structure (services, shared anchor, executor, backends, mounts, environment, health
and start order, published ports), that it only mounts paths that exist, and that the image
pins the same Airflow as requirements.txt.  .env.example and the example connections are
checked in test_compose_env.py; the shared helpers are in tests/helpers/compose.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.helpers.compose import (
    AIRFLOW_SERVICES,
    COMMANDS,
    COMPOSE,
    DOCKERFILE,
    DOCKERIGNORE,
    LONG_RUNNING,
    MOUNTS,
    REQUIRED_SECRETS,
    ROOT,
    SHARED_ENV,
    env_files,
    interpolate,
    load_compose,
    load_env_example,
    parse_env_file,
)
from tests.helpers.compose import service_env as _env
from tests.helpers.compose import service_mounts as _mounts


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return load_env_example()


# --- compose structure -------------------------------------------------------------------


def test_compose_parses_and_lists_the_services(services):
    for name in AIRFLOW_SERVICES + ["postgres", "redis"]:
        assert name in services, f"service {name} missing"
    for name, command in COMMANDS.items():
        assert services[name]["command"] == command, name


def test_backends_are_postgres16_and_redis72(services):
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"].split("-")[0] == "redis:7.2"
    assert "ports" not in services["postgres"] and "ports" not in services["redis"], (
        "the metadata DB and the broker must not be published on the host"
    )


def test_every_airflow_service_shares_the_common_anchor_and_built_image(compose, services):
    common = compose["x-airflow-common"]
    assert common["build"] == "."
    raw = COMPOSE.read_text(encoding="utf-8")
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["image"] == common["image"] and svc["build"] == common["build"], name
        assert svc["env_file"] == common["env_file"], name
        assert _mounts(svc) == _mounts(common), name
        # the literal anchor merge, not a copy that could drift
        block = raw.split(f"\n  {name}:\n", 1)[1]
        assert block.lstrip().startswith("<<: *airflow-common\n"), name


def test_executor_and_backends_in_every_airflow_service(services):
    filled = {key: "x" for key in REQUIRED_SECRETS} | {"POSTGRES_PASSWORD": "s3cret-pw"}
    for name in AIRFLOW_SERVICES:
        env = {k: interpolate(str(v), filled) for k, v in _env(services[name]).items()}
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        db = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme.startswith("postgresql") and db.hostname == "postgres" and db.path == "/airflow", (
            name
        )
        broker = urlparse(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis", name
        assert db.password == "s3cret-pw", name
        result = urlparse(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert (result.hostname, result.password) == ("postgres", "s3cret-pw"), name
        # SQLAlchemy 2.1 (pinned) maps a bare "postgresql://" to psycopg 3, which is not installed
        assert (db.scheme, result.scheme) == ("postgresql+psycopg2", "db+postgresql+psycopg2"), name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name


def test_airflow3_execution_api_and_shared_secrets(services):
    api = services["airflow-apiserver"]
    container_ports = {str(p).rsplit(":", 1)[-1] for p in api["ports"]}
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        url = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (url.hostname, str(url.port), url.path) == ("airflow-apiserver", "8080", "/execution/"), name
        assert str(url.port) in container_ports
        # the same secret in every component, and no insecure built-in default
        for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
            value = env[key]
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (
                f"{name}: {key} must be required from .env: {value!r}"
            )


def test_airflow_config_keys_exist_in_airflow_3():
    """Every AIRFLOW__SECTION__KEY (environment and deploy/airflow-celery.env) names a real option of
    the installed Airflow or its Celery provider (typos are silent)."""
    from airflow.configuration import conf

    env = _env(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["x-airflow-common"])
    keys = [k for k in env if k.startswith("AIRFLOW__")]
    assert keys
    for key in keys:
        _, section, option = key.split("__", 2)
        section, option = section.lower(), option.lower()
        options = conf.configuration_description.get(section, {}).get("options", {})
        assert option in options, f"{key}: [{section}] {option} is not an Airflow 3 option"


def test_celery_settings_come_from_the_file_the_integration_test_runs_with(services):
    """deploy/airflow-celery.env is every Airflow service's first env_file, the executor is set
    there only, and scripts/celery_it.py reads that same file (tests/system/test_celery_integration.py)."""
    shared = parse_env_file(SHARED_ENV.read_text(encoding="utf-8"))
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert env_files(svc)[0] == str(SHARED_ENV.relative_to(ROOT)), name
        assert env_files(svc)[-1] == ".env", f"{name}: the user's .env comes last (overrides)"
        overridden = set(shared) & set(svc.get("environment") or {})
        assert not overridden, f"{name}: {overridden} set both in the shared file and inline"
    driver = (ROOT / "scripts" / "celery_it.py").read_text(encoding="utf-8")
    assert '"deploy" / "airflow-celery.env"' in driver


def test_ccwatch_environment_and_mounts(services):
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        env = _env(svc)
        assert env["CCWATCH_HOME"] == "/opt/airflow/data"
        assert env["CCWATCH_CONFIG"] == "/opt/airflow/include/config/ccwatch.yaml"
        assert env["PYTHONPATH"].split(":") == ["/opt/airflow/include", "/opt/airflow/plugins"]
        mounts = _mounts(svc)
        for target, host in MOUNTS.items():
            assert mounts[target][0] == host, f"{name}: {target}"
        assert mounts["/opt/airflow/data"][1] == "rw", "outputs must be writable"
        for target in ("/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"):
            assert mounts[target][1] == "ro", f"{name}: code mount {target} should be read-only"
        assert ".env" in svc["env_file"], name


def test_container_paths_match_the_repo_layout(services):
    """CCWATCH_CONFIG and PYTHONPATH point inside the mounts at files that exist in the repo."""
    env = _env(services["airflow-worker"])
    config_rel = Path(env["CCWATCH_CONFIG"]).relative_to("/opt/airflow/include")
    assert (ROOT / "include" / config_rel).is_file()
    assert (ROOT / "include" / "ccwatch" / "__init__.py").is_file()
    assert (ROOT / "plugins" / "ccwatch_airflow" / "__init__.py").is_file()
    assert (ROOT / "dags" / "ccwatch_nightly.py").is_file()


def test_every_mounted_host_path_exists(compose, services):
    named = set(compose.get("volumes") or {})
    sources = {src for svc in services.values() for src, _ in _mounts(svc).values()}
    for src in sources:
        if src in named:
            continue
        assert src.startswith("./"), f"host path {src} should be relative to the project"
        if src == "./data":  # outputs: created on first start (airflow-init chowns it)
            continue
        assert (ROOT / src).exists(), f"mounted host path {src} does not exist in the repo"
    assert "./data" in sources


def test_healthchecks_and_start_order(services):
    for name in LONG_RUNNING + ["postgres", "redis"]:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    for name in LONG_RUNNING:
        assert (
            services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        ), name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_init_migrates_creates_admin_and_checks_config(services):
    init = services["airflow-init"]
    env = _env(init)
    assert env["_AIRFLOW_DB_MIGRATE"] == "true" and env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    script = "\n".join(init["command"])
    assert "/entrypoint airflow version" in script
    assert "db check-migrations" in script
    assert "load_settings()" in script
    assert "/opt/airflow/data" in script and "chown" in script


# --- image -------------------------------------------------------------------------------


def _pinned(name: str) -> str:
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(rf"{re.escape(name)}==([^\s;#]+)", line.strip(), flags=re.IGNORECASE)
        if m:
            return m.group(1)
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def test_dockerfile_base_matches_the_pinned_airflow():
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(froms) == 1
    m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", froms[0])
    assert m, froms[0]
    assert m.group(1) == _pinned("apache-airflow") == _pinned("apache-airflow-core")
    assert m.group(2) == "3.11"


def test_dockerfile_installs_requirements_without_moving_airflow():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^USER airflow$", text, flags=re.MULTILINE)
    install = [ln for ln in text.splitlines() if ln.startswith("RUN pip install")]
    assert len(install) == 1
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install[0] and "-r " in install[0]
    assert "--no-cache-dir" in install[0]
    # nothing secret or bulky goes into the build context
    ignored = {ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".env", ".venv", "data", ".git", "airflow_home"} <= ignored
    assert "!.env.example" in ignored


def test_only_the_ui_port_is_published(compose, services):
    """The api-server (UI + REST API) is the one service reachable from the host; the metadata DB,
    the broker, the workers and the rest publish nothing (``expose`` stays on the compose network)."""
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert list(published) == ["airflow-apiserver"], published
    (mapping,) = published["airflow-apiserver"]
    assert str(mapping).rsplit(":", 1)[-1] == "8080"
    assert "ports" not in compose["x-airflow-common"], "the shared anchor would publish from every service"
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", f"{name} must not share the host's network"


def test_admin_password_has_no_default_and_comes_from_env(services, env_example):
    env = _env(services["airflow-init"])
    assert re.fullmatch(r"\$\{_AIRFLOW_WWW_USER_PASSWORD:\?[^}]+\}", env["_AIRFLOW_WWW_USER_PASSWORD"]), (
        "the admin password must be required from .env, never defaulted"
    )
    assert env_example["_AIRFLOW_WWW_USER_PASSWORD"] == "", ".env.example must not ship a password"
    raw = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"_AIRFLOW_WWW_USER_PASSWORD:-", raw)
    for name, svc in services.items():  # no service sets it (or another *PASSWORD) to a literal value
        for key, value in _env(svc).items():
            if key.endswith("PASSWORD"):
                assert str(value).startswith("${") and ":?" in str(value), (name, key, value)


def test_the_api_server_can_serve_the_compliance_page(services):
    """The Compliance page (plugins/ccwatch_plugin.py) runs in the api-server: Airflow's default
    plugins folder is the mounted ./plugins (not moved elsewhere), the plugin loader imports only
    ccwatch_plugin.py there, the page reads CCWATCH_HOME, and the JWT secret that signs the UI's
    login cookie is the one every component gets from .env."""
    api = services["airflow-apiserver"]
    env = _env(api)
    assert "AIRFLOW__CORE__PLUGINS_FOLDER" not in env, "the default /opt/airflow/plugins is the mounted ./plugins"
    assert _mounts(api)["/opt/airflow/plugins"] == ("./plugins", "ro")
    assert _mounts(api)["/opt/airflow/data"][0] == "./data" and env["CCWATCH_HOME"] == "/opt/airflow/data"
    assert "/opt/airflow/plugins" in env["PYTHONPATH"].split(":")
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW__API_AUTH__JWT_SECRET:?")
    top_level = sorted(p.name for p in (ROOT / "plugins").glob("*.py"))
    assert top_level == ["ccwatch_plugin.py"]
    ignored = (ROOT / "plugins" / ".airflowignore").read_text(encoding="utf-8").splitlines()
    assert "ccwatch_airflow" in ignored
    assert "8080" in str(api["ports"][0])
