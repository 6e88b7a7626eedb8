"""Surveillance alerts with their triage state (open, investigating, escalated, dismissed).

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('surveillance_alert',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('type', sa.String(), nullable=False),
    sa.Column('accounts', sa.JSON(), nullable=True),
    sa.Column('accounts_key', sa.Text(), nullable=False),
    sa.Column('order_ids', sa.JSON(), nullable=True),
    sa.Column('trade_ids', sa.JSON(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('surveillance_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveillance_alert_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveillance_alert_type'), ['type'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('surveillance_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveillance_alert_type'))
        batch_op.drop_index(batch_op.f('ix_surveillance_alert_status'))
    op.drop_table('surveillance_alert')
