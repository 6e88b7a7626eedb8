"""The PII vault table (`PiiVault` in app/models.py), which the release before Alembic created on first use.

Revision ID: 0002
Revises: 0001
So a database stamped at the baseline may already hold it: it is created only where missing.
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("pii_vault"):
        return
    op.create_table(
        "pii_vault",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kb", sa.String(), nullable=False),
        sa.Column("token", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("original", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kb", "token", name="uq_pii_vault_kb_token"),
    )
    op.create_index("ix_pii_vault_kb", "pii_vault", ["kb"], unique=False)
    op.create_index("ix_pii_vault_token", "pii_vault", ["token"], unique=False)


def downgrade() -> None:
    op.drop_table("pii_vault")
