"""Structure templates: every version of each template uploaded or read from the data directory.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('structure_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure', sa.String(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=True),
    sa.Column('sha256', sa.String(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('uploaded_by', sa.String(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('structure', 'version')
    )
    with op.batch_alter_table('structure_template', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_structure_template_structure'), ['structure'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('structure_template', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_structure_template_structure'))
    op.drop_table('structure_template')
