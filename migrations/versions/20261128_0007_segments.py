"""segments: the rule that chose each case's policy, and why

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Written once when the case opens (DUNNING_RULES); a running case never changes segment.
def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("segment", sa.String(100), nullable=True))
        batch.add_column(sa.Column("segment_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("experiment", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("experiment")
        batch.drop_column("segment_reason")
        batch.drop_column("segment")
