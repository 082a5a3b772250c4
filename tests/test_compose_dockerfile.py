"""The Dockerfile and .dockerignore: a pinned slim base, every runtime file copied, no root."""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from pathlib import Path

from activities.email_render import TEMPLATE_DIR
from models.i18n import LOCALES_DIR
from models.settings import Settings
from tests.compose_files import ROOT, copied_sources, dockerfile_instructions


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
