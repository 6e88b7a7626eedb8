"""KYC onboarding: invitations, applications and their machine's steps, uploaded documents, due-diligence
reports, signed master agreements and their append-only evidence chain; an institution keeps its USCC.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_EVIDENCE_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER agreement_evidence_no_update BEFORE UPDATE ON agreement_evidence "
        "BEGIN SELECT RAISE(ABORT, 'agreement evidence is append-only'); END",
        "CREATE TRIGGER agreement_evidence_no_delete BEFORE DELETE ON agreement_evidence "
        "BEGIN SELECT RAISE(ABORT, 'agreement evidence is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION agreement_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'agreement evidence is append-only'; END $$",
        "CREATE TRIGGER agreement_evidence_append_only BEFORE UPDATE OR DELETE ON agreement_evidence "
        "FOR EACH ROW EXECUTE FUNCTION agreement_evidence_append_only()",
    ],
}
_EVIDENCE_UNPROTECT = {
    "sqlite": ["DROP TRIGGER agreement_evidence_no_update", "DROP TRIGGER agreement_evidence_no_delete"],
    "postgresql": ["DROP TRIGGER agreement_evidence_append_only ON agreement_evidence",
                   "DROP FUNCTION agreement_evidence_append_only()"],
}


def upgrade() -> None:
    op.create_table('kyc_invitation',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('token_sha256', sa.String(), nullable=False),
    sa.Column('institution_name', sa.String(), nullable=False),
    sa.Column('contact_name', sa.String(), nullable=False),
    sa.Column('contact_mobile', sa.String(), nullable=False),
    sa.Column('created_by', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(), nullable=True),
    sa.Column('application_id', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_sha256')
    )
    with op.batch_alter_table('kyc_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kyc_invitation_application_id'), ['application_id'], unique=False)

    op.create_table('kyc_application',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('invitation_id', sa.String(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('awaiting_role', sa.String(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('screening', sa.JSON(), nullable=True),
    sa.Column('blacklist_hit', sa.Boolean(), nullable=False),
    sa.Column('agreement_sha256', sa.String(), nullable=True),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invitation_id')
    )
    with op.batch_alter_table('kyc_application', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kyc_application_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kyc_application_state'), ['state'], unique=False)

    op.create_table('kyc_transition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.String(), nullable=False),
    sa.Column('trigger', sa.String(), nullable=False),
    sa.Column('from_state', sa.String(), nullable=False),
    sa.Column('to_state', sa.String(), nullable=False),
    sa.Column('actor', sa.String(), nullable=False),
    sa.Column('role', sa.String(), nullable=False),
    sa.Column('comment', sa.String(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kyc_transition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kyc_transition_application_id'), ['application_id'], unique=False)

    op.create_table('kyc_document',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('invitation_id', sa.String(), nullable=False),
    sa.Column('application_id', sa.String(), nullable=True),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('filename', sa.String(), nullable=False),
    sa.Column('content_type', sa.String(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kyc_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kyc_document_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kyc_document_invitation_id'), ['invitation_id'], unique=False)

    op.create_table('kyc_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.String(), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('sha256', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kyc_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kyc_report_application_id'), ['application_id'], unique=False)

    op.create_table('kyc_agreement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.String(), nullable=False),
    sa.Column('unsigned_sha256', sa.String(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(), nullable=False),
    sa.Column('signer', sa.String(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acceptance', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('application_id')
    )
    op.create_table('agreement_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.String(), nullable=False),
    sa.Column('agreement_sha256', sa.String(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signer', sa.String(), nullable=False),
    sa.Column('acceptance', sa.JSON(), nullable=True),
    sa.Column('prev_hash', sa.String(), nullable=False),
    sa.Column('entry_hash', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_hash')
    )
    with op.batch_alter_table('agreement_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_evidence_application_id'), ['application_id'], unique=False)
    for stmt in _EVIDENCE_APPEND_ONLY[op.get_bind().dialect.name]:
        op.execute(stmt)

    op.add_column('institution', sa.Column('uscc', sa.String(), nullable=True))
    op.create_index('uq_institution_uscc', 'institution', ['uscc'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_institution_uscc', table_name='institution')
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_column('uscc')
    for stmt in _EVIDENCE_UNPROTECT[op.get_bind().dialect.name]:
        op.execute(stmt)
    with op.batch_alter_table('agreement_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_evidence_application_id'))
    op.drop_table('agreement_evidence')
    op.drop_table('kyc_agreement')
    with op.batch_alter_table('kyc_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_report_application_id'))
    op.drop_table('kyc_report')
    with op.batch_alter_table('kyc_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_document_invitation_id'))
        batch_op.drop_index(batch_op.f('ix_kyc_document_application_id'))
    op.drop_table('kyc_document')
    with op.batch_alter_table('kyc_transition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_transition_application_id'))
    op.drop_table('kyc_transition')
    with op.batch_alter_table('kyc_application', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_application_state'))
        batch_op.drop_index(batch_op.f('ix_kyc_application_institution_id'))
    op.drop_table('kyc_application')
    with op.batch_alter_table('kyc_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kyc_invitation_application_id'))
    op.drop_table('kyc_invitation')
