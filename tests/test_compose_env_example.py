"""The variables of docker-compose.yml and .env.example: braced, documented, defaulted alike."""

from __future__ import annotations

from tests.compose_files import (
    ENV_EXAMPLE,
    compose_interpolations,
    compose_variables,
    env_example,
    settings_env_names,
)


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
