"""docker-compose.yml, the Dockerfile and .env.example agree with each other and with the code.

No Docker is needed: the files are parsed, and the values compose would substitute are taken
from the `${VAR:-default}` defaults.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from activities.email_render import TEMPLATE_DIR
from models.i18n import LOCALES_DIR
from models.settings import Settings
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

EXPECTED_SERVICES = {
    "postgresql",
    "dunning-db-init",
    "temporal-admin-tools",
    "temporal",
    "temporal-create-namespace",
    "temporal-ui",
    "migrate",
    "worker",
    "api",
}
APP_SERVICES = ("migrate", "worker", "api")
# Long-running processes that read every setting.
SETTINGS_SERVICES = ("worker", "api")
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
TEMPORAL_GRPC_PORT = 7233

# `$$` (an escaped dollar), `${NAME}`, `${NAME:-default}`, `${NAME?message}`..., or a bare `$NAME`.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


# ---------------------------------------------------------------------------- helpers


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    result = compose()["services"]
    assert isinstance(result, dict)
    return result


def service(name: str) -> dict[str, Any]:
    return services()[name]


def environment(name: str) -> dict[str, str]:
    """A service's environment in either compose form, values as written (uninterpolated)."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def interpolations(text: str) -> Iterator[re.Match[str]]:
    for match in INTERPOLATION.finditer(text):
        if not match.group("escaped"):
            yield match


def resolve(text: str) -> str:
    """What compose substitutes when no variable is set: the defaults (`${A:?msg}` is an error)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$$"
        op = match.group("op") or ""
        if "?" in op:
            raise ValueError(f"{match.group(0)} has no default")
        return match.group("arg") if "-" in op else ""

    return INTERPOLATION.sub(substitute, text)


def unescape(script: str) -> str:
    """A command as the container receives it (compose turns `$$` into `$`)."""
    return script.replace("$$", "$")


def default_of(expression: str, variable: str) -> str | None:
    """The default in an expression that is exactly `${variable:-default}`."""
    match = INTERPOLATION.fullmatch(expression)
    if match and match.group("braced") == variable and (match.group("op") or "").endswith("-"):
        return match.group("arg")
    return None


@cache
def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def settings_env_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def compose_strings() -> Iterator[str]:
    """Every string in the compose file (keys too), where compose interpolates; not comments."""
    return strings_in(compose())


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def compose_interpolations() -> Iterator[re.Match[str]]:
    for text in compose_strings():
        yield from interpolations(text)


def compose_variables() -> set[str]:
    return {m.group("braced") or m.group("bare") for m in compose_interpolations()}


def image_tag(image: str) -> str | None:
    reference = image.split("@", 1)[0]
    name_start = reference.rfind("/") + 1
    _, sep, tag = reference[name_start:].rpartition(":")
    return tag if sep else None


def seconds(duration: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def published_ports(name: str) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of a service's short-syntax ports, resolved."""
    result = []
    for entry in service(name).get("ports", []):
        assert isinstance(entry, str), f"{name}: use the short port syntax, got {entry!r}"
        match = re.fullmatch(
            r"(?:(?P<ip>[0-9.]+):)?(?P<host>\d+):(?P<container>\d+)(?:/(?:tcp|udp))?",
            resolve(entry),
        )
        assert match, f"{name}: malformed port {entry!r}"
        result.append((match["ip"] or "0.0.0.0", int(match["host"]), int(match["container"])))
    return result


def shell_script(name: str) -> str:
    svc = service(name)
    assert svc.get("entrypoint") == ["/bin/sh", "-c"], f"{name}: expected a sh -c job"
    command = svc["command"]
    assert isinstance(command, list) and len(command) == 1
    return unescape(command[0])


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def copied_sources() -> set[str]:
    sources: set[str] = set()
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY":
            continue
        args = json.loads(rest) if rest.startswith("[") else rest.split()
        if any(arg.startswith("--from") for arg in args):
            continue
        paths = [arg for arg in args if not arg.startswith("--")]
        sources.update(path.removeprefix("./").rstrip("/") or "." for path in paths[:-1])
    return sources


# ---------------------------------------------------------------------------- services


def test_expected_services_exist() -> None:
    assert EXPECTED_SERVICES <= set(services())


def test_pulled_images_are_pinned_to_a_version() -> None:
    for name, svc in services().items():
        if "build" in svc:
            continue
        image = svc.get("image")
        assert isinstance(image, str), f"{name}: no image"
        assert "$" not in image, f"{name}: image tag must not come from a variable"
        tag = image_tag(image)
        assert tag is not None, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"
        assert re.match(r"\d+\.\d+", tag), f"{name}: {image} is not a specific version"


def test_the_deprecated_auto_setup_image_is_not_used() -> None:
    for name, svc in services().items():
        assert "temporalio/auto-setup" not in str(svc.get("image", "")), name


def test_temporal_tools_match_the_server_version() -> None:
    server_tag = image_tag(service("temporal")["image"])
    for name in ("temporal-admin-tools", "temporal-create-namespace"):
        image = service(name)["image"]
        assert image.startswith("temporalio/admin-tools:"), name
        assert image_tag(image) == server_tag, f"{name}: schema/CLI tools differ from the server"


def test_app_services_build_one_image_from_the_dockerfile() -> None:
    images = set()
    for name in APP_SERVICES:
        build = service(name)["build"]
        assert (ROOT / build["context"]).resolve() == ROOT, name
        assert build.get("dockerfile", "Dockerfile") == DOCKERFILE.name, name
        images.add(service(name)["image"])
    assert DOCKERFILE.is_file()
    assert len(images) == 1, f"the app services should share one built image: {images}"


def test_no_fixed_container_names() -> None:
    # container_name makes a service unscalable and two checkouts' stacks collide.
    assert not [name for name, svc in services().items() if "container_name" in svc]


def test_published_ports_are_well_formed_and_distinct() -> None:
    seen: dict[int, str] = {}
    for name in services():
        for _, host, container in published_ports(name):
            assert 0 < host < 65536 and 0 < container < 65536, name
            assert host not in seen, f"{name} and {seen.get(host)} both publish port {host}"
            seen[host] = name
    assert seen, "nothing is published"


def test_unauthenticated_infrastructure_is_published_on_loopback_only() -> None:
    for name in ("postgresql", "temporal", "temporal-ui"):
        for ip, _, _ in published_ports(name):
            assert ip == "127.0.0.1", f"{name} is published on {ip}"


def test_depends_on_uses_known_services_and_valid_conditions() -> None:
    all_services = services()
    for name, svc in all_services.items():
        depends_on = svc.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: use the long depends_on form"
        for target, spec in depends_on.items():
            assert target in all_services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in all_services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                restart = all_services[target].get("restart", "no")
                assert restart == "no", f"{target} is awaited as a job but restarts ({restart})"


def test_depends_on_has_no_cycles() -> None:
    graph = {name: set(svc.get("depends_on", {})) for name, svc in services().items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for target in graph[name]:
                visit(target, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_app_services_wait_for_the_stack() -> None:
    for name in ("worker", "api"):
        depends_on = service(name)["depends_on"]
        assert depends_on["temporal"]["condition"] == "service_healthy", name
        for job in ("temporal-create-namespace", "migrate"):
            assert depends_on[job]["condition"] == "service_completed_successfully", name
    migrate = service("migrate")
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_healthchecks_exist_where_services_wait_for_health() -> None:
    for name in ("postgresql", "temporal", "api"):
        test = service(name).get("healthcheck", {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"
    assert "pg_isready" in " ".join(service("postgresql")["healthcheck"]["test"])


def test_api_listens_where_it_is_published_and_checked() -> None:
    api = service("api")
    command = api["command"]
    assert command[:2] == ["dunning", "api"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert [container for _, _, container in published_ports("api")] == [port]
    assert environment("api")["API_PORT"] == str(port)
    assert f"127.0.0.1:{port}/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["ports"] == [f"${{API_PORT:-{env_example()['API_PORT']}}}:{port}"]


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


# ---------------------------------------------------------------------------- variables


def test_every_compose_variable_is_braced() -> None:
    # A bare $NAME in a command is a shell variable missing its `$$` escape: compose would
    # substitute it (usually with nothing) before the shell ever sees it.
    bare = sorted({m.group("bare") for m in compose_interpolations() if m.group("bare")})
    assert not bare, f"unescaped shell variables: {bare}"


def test_every_compose_variable_is_documented() -> None:
    missing = compose_variables() - set(env_example())
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_every_setting_is_documented() -> None:
    missing = settings_env_names() - set(env_example())
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_env_example_documents_nothing_unknown() -> None:
    unknown = set(env_example()) - settings_env_names() - compose_variables()
    assert not unknown, f"read by nothing: {sorted(unknown)}"


def test_env_example_has_one_comment_per_variable_and_no_duplicates() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    keys = []
    for index, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            keys.append(line.partition("=")[0])
            previous = lines[index - 1] if index else ""
            assert previous.startswith("# "), f"{keys[-1]} has no comment line above it"
    assert len(keys) == len(set(keys)), "duplicate keys"


def test_compose_defaults_match_env_example() -> None:
    # `docker compose up` without a .env behaves like one copied from .env.example.
    example = env_example()
    for match in compose_interpolations():
        name, op = match.group("braced"), match.group("op") or ""
        if name and op.endswith("-") and name in example:
            assert match.group("arg") == example[name], f"{name}: {match.group(0)}"


def test_env_example_holds_no_real_secrets() -> None:
    example = env_example()
    assert example["STRIPE_API_KEY"].startswith("sk_test_")
    assert "replace" in example["STRIPE_API_KEY"]
    assert "replace" in example["STRIPE_WEBHOOK_SECRET"]
    assert "replace" in example["SENDGRID_API_KEY"]
    assert "replace" in example["DUNNING_SUPPORT_TOKEN"]


# ---------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_image_is_a_pinned_python_311_slim() -> None:
    bases = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", b) for b in bases), bases


def test_dockerfile_copies_every_package_and_runtime_file() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    packages = set()
    for pattern in setuptools["packages"]["find"]["include"]:
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", pattern)
        assert match, pattern
        packages.add(match.group())
    assert packages, "no packages found in pyproject.toml"
    modules = {f"{module}.py" for module in setuptools.get("py-modules", [])}
    alembic = configparser.ConfigParser(interpolation=None)
    alembic.read(ROOT / "alembic.ini")
    migrations = Path(alembic["alembic"]["script_location"].replace("%(here)s/", ""))
    runtime = {
        pyproject["project"]["readme"],  # `pip install .` reads it
        "alembic.ini",
        migrations.parts[0],
        TEMPLATE_DIR.relative_to(ROOT).parts[0],  # email templates, read from the source tree
        LOCALES_DIR.relative_to(ROOT).parts[0],  # message catalogs, compiled at load
        Path(Settings.model_fields["dunning_policy"].default).parts[0],
    }
    needed = packages | modules | runtime
    for path in needed:
        assert (ROOT / path).exists(), f"{path} does not exist"
    copied = copied_sources()
    assert "." not in copied, "copy named paths, not the whole context"
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


def test_dockerfile_runs_the_worker_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    cmds = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ["python", "worker.py"]
    envs = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", envs)
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install" in runs
    assert "[dev]" not in runs and "optional-dependencies" not in runs, "dev extras installed"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", ".dev", "tests"} <= ignored
    # Nothing the Dockerfile copies may be ignored.
    assert not (copied_sources() & ignored)
