"""case work: dimensions, extracted values with evidence, workflow and SLA clocks, taxonomy, notifications

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_CASE_COLUMNS = (
    ('occupation', sa.String(32), True), ('gender', sa.String(4), False), ('age_bracket', sa.String(16), False),
    ('enterprise_type', sa.String(8), True), ('arrears_type', sa.String(16), False),
    ('workers', sa.Integer(), False), ('amount', sa.BigInteger(), False), ('caller_phone', sa.String(32), True),
    ('confirmed_by', sa.String(64), False), ('confirmed_at', sa.DateTime(timezone=True), False),
    ('unit', sa.String(64), True), ('assignee', sa.String(64), True),
    ('accepted_at', sa.DateTime(timezone=True), True), ('feedback_due_at', sa.DateTime(timezone=True), True),
    ('first_feedback_at', sa.DateTime(timezone=True), False), ('due_at', sa.DateTime(timezone=True), True),
    ('closed_at', sa.DateTime(timezone=True), False), ('escalated_at', sa.DateTime(timezone=True), False),
)


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        for name, type_, indexed in _CASE_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
            if indexed:
                batch_op.create_index(f'ix_cases_{name}', [name], unique=False)
        batch_op.add_column(sa.Column('group_case', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('ix_cases_group_case', ['group_case'], unique=False)
        batch_op.add_column(sa.Column('escalated', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('ix_cases_escalated', ['escalated'], unique=False)
        batch_op.add_column(sa.Column('extracted', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('suggested', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('difficulty', sa.String(8), nullable=False, server_default='一般'))
        batch_op.create_index('ix_cases_created_by', ['created_by'], unique=False)
    op.execute("UPDATE cases SET accepted_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_created_by')
        for name in ('difficulty', 'suggested', 'extracted'):
            batch_op.drop_column(name)
        for name in ('escalated', 'group_case'):
            batch_op.drop_index(f'ix_cases_{name}')
            batch_op.drop_column(name)
        for name, _type, indexed in reversed(_CASE_COLUMNS):
            if indexed:
                batch_op.drop_index(f'ix_cases_{name}')
            batch_op.drop_column(name)
