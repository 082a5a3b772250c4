"""stripe events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand to match models/stripe_events.py (StripeEvent).
    op.create_table('stripe_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('api_version', sa.String(length=50), nullable=True),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=True),
    sa.Column('event_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('action', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    op.create_index(op.f('ix_stripe_events_object_id'), 'stripe_events', ['object_id'], unique=False)
    op.create_index(op.f('ix_stripe_events_received_at'), 'stripe_events', ['received_at'], unique=False)
    op.create_index(op.f('ix_stripe_events_status'), 'stripe_events', ['status'], unique=False)
    op.create_index(op.f('ix_stripe_events_type'), 'stripe_events', ['type'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_stripe_events_type'), table_name='stripe_events')
    op.drop_index(op.f('ix_stripe_events_status'), table_name='stripe_events')
    op.drop_index(op.f('ix_stripe_events_received_at'), table_name='stripe_events')
    op.drop_index(op.f('ix_stripe_events_object_id'), table_name='stripe_events')
    op.drop_table('stripe_events')
