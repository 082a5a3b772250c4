"""docker-compose.yml, the Dockerfile and .env.example, parsed for the tests (test_compose*.py).

No Docker is needed: the files are parsed, and the values compose would substitute are taken
from the `${VAR:-default}` defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from models.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

APP_SERVICES = ("migrate", "worker", "api")

# `$$` (an escaped dollar), `${NAME}`, `${NAME:-default}`, `${NAME?message}`..., or a bare `$NAME`.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


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
