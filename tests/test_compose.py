"""docker-compose.yml: the Temporal services and the app containers' settings match the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from models.settings import Settings
from tests.compose_files import (
    APP_SERVICES,
    INTERPOLATION,
    ROOT,
    default_of,
    env_example,
    environment,
    published_ports,
    resolve,
    seconds,
    service,
    services,
    settings_env_names,
    shell_script,
)
from workflows.search_attributes import ALL_KEYS

# Long-running processes that read every setting.
SETTINGS_SERVICES = ("worker", "api")
TEMPORAL_GRPC_PORT = 7233


# ---------------------------------------------------------------------------- Temporal


def test_temporal_server_uses_the_postgresql_service() -> None:
    env = environment("temporal")
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["DB_PORT"] == "5432"
    postgres_env = environment("postgresql")
    assert env["POSTGRES_USER"] == postgres_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == postgres_env["POSTGRES_PASSWORD"]
    assert [container for _, _, container in published_ports("temporal")] == [TEMPORAL_GRPC_PORT]


def test_temporal_dynamic_config_file_is_mounted() -> None:
    # The server image ships no dynamic config, and the server exits when the file is missing.
    config_path = Path("/etc/temporal") / environment("temporal")["DYNAMIC_CONFIG_FILE_PATH"]
    for volume in service("temporal")["volumes"]:
        source, target, *_ = volume.split(":")
        if config_path.is_relative_to(target):
            mounted = ROOT / source / config_path.relative_to(target)
            assert mounted.is_file(), f"{mounted} is missing"
            assert isinstance(yaml.safe_load(mounted.read_text(encoding="utf-8")), dict)
            return
    pytest.fail(f"nothing is mounted at {config_path}")


def test_schema_job_sets_up_both_temporal_databases() -> None:
    env = environment("temporal-admin-tools")
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["SQL_PASSWORD"] == environment("postgresql")["POSTGRES_PASSWORD"]
    script = shell_script("temporal-admin-tools")
    assert "--plugin postgres12" in script
    for database, schema in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"--db {database} create" in script
        assert f"--db {database} setup-schema -v 0.0" in script
        assert re.search(
            rf"--db {database} update-schema -d \S*postgresql/v12/{schema}/versioned", script
        ), f"{database} is not upgraded from the {schema} schema"


def test_namespace_job_creates_the_search_attributes_the_code_uses() -> None:
    script = shell_script("temporal-create-namespace")
    created = dict(re.findall(r"--name (\w+) --type (\w+)", script))

    def cli_type(key: Any) -> str:
        return "".join(part.capitalize() for part in key.indexed_value_type.name.split("_"))

    assert created == {key.name: cli_type(key) for key in ALL_KEYS}
    assert "temporal operator namespace create" in script
    assert "temporal operator cluster health" in script


def test_namespace_job_and_ui_use_the_apps_temporal() -> None:
    app_env = environment("worker")
    job_env = environment("temporal-create-namespace")
    ui_env = environment("temporal-ui")
    address = f"temporal:{TEMPORAL_GRPC_PORT}"
    assert app_env["TEMPORAL_ADDRESS"] == job_env["TEMPORAL_ADDRESS"] == address
    assert ui_env["TEMPORAL_ADDRESS"] == address
    assert job_env["TEMPORAL_NAMESPACE"] == app_env["TEMPORAL_NAMESPACE"]
    assert ui_env["TEMPORAL_DEFAULT_NAMESPACE"] == app_env["TEMPORAL_NAMESPACE"]


def test_ui_accepts_requests_from_its_published_address() -> None:
    (_, ui_port, container_port), *_ = published_ports("temporal-ui")
    assert container_port == 8080
    origins = resolve(environment("temporal-ui")["TEMPORAL_CORS_ORIGINS"]).split(",")
    assert f"http://localhost:{ui_port}" in origins
    assert resolve(environment("worker")["TEMPORAL_UI_URL"]) == f"http://localhost:{ui_port}"


def test_inline_job_scripts_are_valid_sh() -> None:
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh")
    for name, svc in services().items():
        if svc.get("entrypoint") != ["/bin/sh", "-c"]:
            continue
        script = shell_script(name)
        assert script.startswith("set -eu"), f"{name}: the job must stop at the first error"
        result = subprocess.run([sh, "-n"], input=script, text=True, capture_output=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"


# ---------------------------------------------------------------------------- app settings


def test_app_containers_set_exactly_the_settings() -> None:
    # Settings ignores unknown variables, so a misspelt name would silently keep the default.
    for name in SETTINGS_SERVICES:
        assert set(environment(name)) == settings_env_names(), name
    assert set(environment("migrate")) <= settings_env_names()


def test_passed_through_defaults_match_the_settings_defaults() -> None:
    checked = 0
    for key, expression in environment("worker").items():
        default = default_of(expression, key)
        if default is None:
            continue
        field = key.lower()
        expected = Settings.model_fields[field].default
        # model_validate validates the one value without reading the environment or .env.
        parsed = getattr(Settings.model_validate({field: default}), field)
        # An empty string stands for "unset" where the setting's default is None.
        assert parsed == expected or (default == "" and expected is None), key
        checked += 1
    assert checked >= 10


def test_app_containers_use_the_stacks_database() -> None:
    url = make_url(resolve(environment("worker")["DATABASE_URL"]))
    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.port) == ("postgresql", 5432)
    assert url.password == env_example()["DUNNING_DB_PASSWORD"]
    for name in APP_SERVICES:
        assert environment(name)["DATABASE_URL"] == environment("worker")["DATABASE_URL"], name
    # The role and database in the URL are the ones dunning-db-init creates.
    script = shell_script("dunning-db-init")
    assert f"CREATE ROLE {url.username} LOGIN" in script
    assert f"CREATE DATABASE {url.database} OWNER {url.username}" in script
    password_variable = "DUNNING_DB_PASSWORD"
    assert f"${{{password_variable}:-" in environment("worker")["DATABASE_URL"]
    assert environment("dunning-db-init")[password_variable].startswith(f"${{{password_variable}")
    assert "ALTER ROLE" in script, "a changed DUNNING_DB_PASSWORD must reach the role"


def test_secrets_have_no_defaults_in_compose() -> None:
    for key in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "SENDGRID_API_KEY"):
        match = INTERPOLATION.fullmatch(environment("worker")[key])
        assert match and match.group("braced") == key and match.group("op") == ":?", key


def test_workers_scale_and_stop_gracefully() -> None:
    worker = service("worker")
    assert worker["command"] == ["python", "worker.py"]
    assert default_of(str(worker["deploy"]["replicas"]), "WORKER_REPLICAS") is not None
    assert "ports" not in worker, "scaled workers cannot share published ports"
    grace_expression = worker["stop_grace_period"]
    assert default_of(grace_expression, "WORKER_STOP_GRACE_PERIOD") is not None
    shutdown_expression = environment("worker")["WORKER_SHUTDOWN_SECONDS"]
    pairs = [
        (resolve(grace_expression), resolve(shutdown_expression)),
        (env_example()["WORKER_STOP_GRACE_PERIOD"], env_example()["WORKER_SHUTDOWN_SECONDS"]),
    ]
    for grace, shutdown in pairs:
        # Room for the final flush and exit after the activities' grace time.
        assert seconds(grace) >= float(shutdown) + 10, (grace, shutdown)
