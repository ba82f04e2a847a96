"""clues: leads registered by hand (线索), verified against deadlines counted back from a promised date

``clues``: one row per clue (XS-YYYY-NNNNNN, gap-free through ``counters`` ``clue:YYYY``): source, category,
text, enterprise (name and registry link), district, workers, amount, the promised date with the 核实 deadline
counted back from it (and both as instants for SQL), status and verdict, who is responsible, amount recovered.
``clue_cases``: the cases a clue is linked to (转为工单, or tracked through it on the ledgers).
The arrears ledgers are a query over clues and cases: no case rows are copied here.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'clues',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(32), nullable=False),
        sa.Column('source', sa.String(8), nullable=False),
        sa.Column('category', sa.String(16), nullable=False),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('received_at', _TS, nullable=False),
        sa.Column('enterprise', sa.String(128), nullable=True),
        sa.Column('enterprise_id', sa.Integer(), nullable=True),
        sa.Column('district', sa.String(16), nullable=True),
        sa.Column('workers', sa.Integer(), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=True),
        sa.Column('promised_date', sa.Date(), nullable=False),
        sa.Column('verify_lead_days', sa.Integer(), nullable=False),
        sa.Column('verify_due', sa.Date(), nullable=False),
        sa.Column('due_at', _TS, nullable=False),
        sa.Column('verify_due_at', _TS, nullable=False),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('verdict', sa.String(8), nullable=True),
        sa.Column('responsible', sa.String(64), nullable=True),
        sa.Column('responsible_unit', sa.String(64), nullable=True),
        sa.Column('amount_recovered', sa.BigInteger(), nullable=True),
        sa.Column('last_note', sa.Text(), nullable=False),
        sa.Column('verified_at', _TS, nullable=True),
        sa.Column('closed_at', _TS, nullable=True),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=False),
        sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name='fk_clues_enterprise_id'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('number', name='uq_clues_number'),
    )
    for column in ('source', 'category', 'received_at', 'enterprise', 'enterprise_id', 'district', 'due_at',
                   'status', 'responsible', 'responsible_unit', 'closed_at'):
        op.create_index(f'ix_clues_{column}', 'clues', [column], unique=False)
    op.create_table(
        'clue_cases',
        sa.Column('clue_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('linked_by', sa.String(64), nullable=False),
        sa.Column('linked_at', _TS, nullable=False),
        sa.ForeignKeyConstraint(['clue_id'], ['clues.id'], name='fk_clue_cases_clue_id', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name='fk_clue_cases_case_id'),
        sa.PrimaryKeyConstraint('clue_id', 'case_id'),
    )
    op.create_index('ix_clue_cases_case_id', 'clue_cases', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_clue_cases_case_id', table_name='clue_cases')
    op.drop_table('clue_cases')
    for column in ('source', 'category', 'received_at', 'enterprise', 'enterprise_id', 'district', 'due_at',
                   'status', 'responsible', 'responsible_unit', 'closed_at'):
        op.drop_index(f'ix_clues_{column}', table_name='clues')
    op.drop_table('clues')
