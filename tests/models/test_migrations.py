"""The Alembic migrations and the ORM models describe the same schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

import models.stripe_events  # noqa: F401  (registers its table)
from models.ledger import Base
from models.migrate import ROOT, upgrade_to_head


def test_models_match_the_migrated_postgres_schema(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_dev_database_migrates_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    upgrade_to_head(url)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    command.downgrade(config, "base")
    assert set(sa.inspect(sa.create_engine(url)).get_table_names()) <= {"alembic_version"}
    upgrade_to_head(url)
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert {
        "cases",
        "attempts",
        "notifications",
        "support_actions",
        "outcomes",
        "stripe_events",
    } <= tables
