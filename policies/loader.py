"""Read policy files (I/O lives here, not in the engine) with errors naming file and field."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies.schema import Policy

POLICY_DIR = Path(__file__).resolve().parent


class PolicyError(ValueError):
    """A policy file is missing, is not YAML, or does not match the policy format."""


def read_yaml(path: Path, what: str, error: type[Exception]) -> Any:
    """A YAML file's content; `error` names the file when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{path}: {what} file not found") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def problems(exc: ValidationError, top: str = "(top level)") -> str:
    """Every validation error as `field.path: message`, for one-line errors naming the field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or top}: {err['msg']}" for err in exc.errors()
    )


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    raw = read_yaml(path, "policy", PolicyError)
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a policy must be a YAML mapping")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{path}: invalid policy: {problems(exc)}") from exc


def resolve_policy_path(name: str | None, default_path: str | Path) -> Path:
    """A policy name ("demo") means policies/<name>.yaml; no name means the worker's default."""
    if not name:
        return Path(default_path)
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    return POLICY_DIR / f"{name}.yaml"


@lru_cache(maxsize=32)
def cached_policy(path: str) -> Policy:
    return load_policy(path)
