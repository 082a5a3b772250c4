"""webhook outbox: the raw event is kept until the relay has applied it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A delivery is answered 2xx once its verified body is committed here; the relay applies it to
# Temporal afterwards and clears the body (payloads carry customer data: kept only until done).
def upgrade() -> None:
    with op.batch_alter_table("stripe_events") as batch:
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_stripe_events_queue",
        "stripe_events",
        ["next_try_at"],
        postgresql_where=sa.text("status IN ('queued', 'processing', 'failed')"),
        sqlite_where=sa.text("status IN ('queued', 'processing', 'failed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_stripe_events_queue", table_name="stripe_events")
    with op.batch_alter_table("stripe_events") as batch:
        batch.drop_column("next_try_at")
        batch.drop_column("attempts")
        batch.drop_column("payload")
