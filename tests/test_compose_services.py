"""docker-compose.yml services: pinned images, one app image, ports, dependencies, health checks."""

from __future__ import annotations

import re

from tests.compose_files import (
    APP_SERVICES,
    DOCKERFILE,
    ROOT,
    env_example,
    environment,
    image_tag,
    published_ports,
    service,
    services,
)

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
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


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
