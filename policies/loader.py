"""Read policy files (I/O lives here, not in the engine) with errors naming file and field."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from policies.schema import Policy

POLICY_DIR = Path(__file__).resolve().parent


class PolicyError(ValueError):
    """A policy file is missing, is not YAML, or does not match the policy format."""


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: policy file not found") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a policy must be a YAML mapping")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"{path}: invalid policy: {problems}") from exc


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
