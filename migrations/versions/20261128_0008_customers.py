"""customers: preferences, payment-page actions, feedback, pre-dunning, experiment arms

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("variant", sa.String(100), nullable=True))
    op.create_table(
        "customer_preferences",
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("channels", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("opted_out", sa.String(200), nullable=True),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "customer_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.String(255), sa.ForeignKey("cases.invoice_id"), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False, unique=True),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_customer_actions_invoice_id", "customer_actions", ["invoice_id"])
    op.create_table(
        "case_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "invoice_id",
            sa.String(255),
            sa.ForeignKey("cases.invoice_id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(30), nullable=True),
        sa.Column("answered_at", TS, nullable=False),
    )
    op.create_table(
        "predunning_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workflow_id", sa.String(300), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("payment_method_id", sa.String(255), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("renews_at", TS, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
    )
    op.create_index("ix_predunning_cases_customer_id", "predunning_cases", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_predunning_cases_customer_id", table_name="predunning_cases")
    op.drop_table("predunning_cases")
    op.drop_table("case_feedback")
    op.drop_index("ix_customer_actions_invoice_id", table_name="customer_actions")
    op.drop_table("customer_actions")
    op.drop_table("customer_preferences")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("variant")
