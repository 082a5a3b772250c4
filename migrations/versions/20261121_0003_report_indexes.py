"""report indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Written by hand for `dunning report` (starter/support/report.py). models/ledger.py should
# declare the same two Index(...) objects so that autogenerate does not propose dropping them.
#
# The report reads the cases opened in a window, joined to their outcomes on invoice_id.
# - ix_cases_report: the window as an index-only range scan that also yields the join key and
#   the decline code, instead of ix_cases_opened_at plus a visit to the ~75 MB heap (per 250k
#   cases), whose rows carry emails and names.
# - ix_outcomes_recovered: only the recovered outcomes (about a third), with closed_at, for the
#   median time to recovery: an index-only scan instead of a bitmap scan of outcomes.
# INCLUDE is PostgreSQL-only; SQLite (dev) gets the plain and the partial index.
#
# CONCURRENTLY: live workers write cases and outcomes, and a plain CREATE INDEX would block
# those writes for the whole build. It cannot run in a transaction, hence the autocommit
# block. A failed concurrent build leaves an INVALID index behind: drop it
# (DROP INDEX CONCURRENTLY ix_...) and run the migration again.


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_cases_report', 'cases', ['opened_at'], unique=False,
            postgresql_include=['invoice_id', 'first_decline_code'],
            postgresql_concurrently=True,
        )
        op.create_index(
            'ix_outcomes_recovered', 'outcomes', ['invoice_id'], unique=False,
            postgresql_include=['closed_at'],
            postgresql_where=sa.text("outcome = 'recovered'"),
            sqlite_where=sa.text("outcome = 'recovered'"),
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_outcomes_recovered', table_name='outcomes', postgresql_concurrently=True)
        op.drop_index('ix_cases_report', table_name='cases', postgresql_concurrently=True)
