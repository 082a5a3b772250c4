"""report indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Written by hand for `dunning report` (starter/support/report.py). models/ledger.py should
# declare the same Index(...) so that autogenerate does not propose dropping it.
#
# The report reads the cases opened in a window [since, until) and joins them to outcomes on
# invoice_id. ix_cases_report makes that window an index-only range scan that also yields the
# join key and the decline code; with ix_cases_opened_at alone every case in the window is a
# visit to the heap (~75 MB per 250k cases: its rows carry emails and names), so the cost of
# a monthly report would grow with the ledger rather than with the month.
# Measured and left out (benchmarks/report.py, 1M rows, warm): covering indexes on invoice_id
# for either side of the join and a partial index of recovered outcomes. The full-ledger
# report is a hash join of every case to its outcome, and none of them made it faster.
# INCLUDE is PostgreSQL-only; SQLite (dev) gets a plain index on opened_at.
#
# CONCURRENTLY: live workers write cases, and a plain CREATE INDEX would block those writes
# for the whole build. It cannot run in a transaction, hence the autocommit block. A failed
# concurrent build leaves an INVALID index behind: DROP INDEX CONCURRENTLY ix_cases_report,
# then run the migration again.


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_cases_report', 'cases', ['opened_at'], unique=False,
            postgresql_include=['invoice_id', 'first_decline_code'],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_cases_report', table_name='cases', postgresql_concurrently=True)
