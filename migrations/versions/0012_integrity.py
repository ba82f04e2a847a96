"""integrity: enterprise integrity scores and colours (企业诚信 红橙黄蓝绿), their rule sets, history, objections

``integrity_rulesets``: published versions of the scoring rules (JSON); the newest is in force.
``enterprise_scores``: one row per rated enterprise: score, computed colour, the items behind it, and a manual
override (colour, reason, who, when).
``enterprise_colour_history``: the rating at the end of each month, kept as computed (unique per month).
``enterprise_objections``: 异议 against a colour and how each was decided (待处理 / 成立 / 不成立).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _enterprise_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name=f'fk_{table}_enterprise_id',
                                   ondelete='CASCADE')


def upgrade() -> None:
    op.create_table(
        'integrity_rulesets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('rules', sa.JSON(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('published_by', sa.String(64), nullable=False),
        sa.Column('published_at', _TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version', name='uq_integrity_rulesets_version'),
    )
    op.create_table(
        'enterprise_scores',
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('colour', sa.String(2), nullable=False),
        sa.Column('ruleset_version', sa.Integer(), nullable=False),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.Column('computed_at', _TS, nullable=False),
        sa.Column('override_colour', sa.String(2), nullable=True),
        sa.Column('override_reason', sa.Text(), nullable=True),
        sa.Column('override_by', sa.String(64), nullable=True),
        sa.Column('override_at', _TS, nullable=True),
        _enterprise_fk('enterprise_scores'),
        sa.PrimaryKeyConstraint('enterprise_id'),
    )
    op.create_index('ix_enterprise_scores_colour', 'enterprise_scores', ['colour'])
    op.create_index('ix_enterprise_scores_override_colour', 'enterprise_scores', ['override_colour'])
    op.create_table(
        'enterprise_colour_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(7), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('colour', sa.String(2), nullable=False),
        sa.Column('ruleset_version', sa.Integer(), nullable=False),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.Column('computed_at', _TS, nullable=False),
        _enterprise_fk('enterprise_colour_history'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('enterprise_id', 'month', name='uq_enterprise_colour_history_month'),
    )
    op.create_index('ix_enterprise_colour_history_enterprise_id', 'enterprise_colour_history', ['enterprise_id'])
    op.create_index('ix_enterprise_colour_history_month', 'enterprise_colour_history', ['month'])
    op.create_table(
        'enterprise_objections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('raised_by', sa.String(64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.Column('decided_by', sa.String(64), nullable=True),
        sa.Column('decided_at', _TS, nullable=True),
        sa.Column('created_at', _TS, nullable=False),
        _enterprise_fk('enterprise_objections'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_enterprise_objections_enterprise_id', 'enterprise_objections', ['enterprise_id'])
    op.create_index('ix_enterprise_objections_status', 'enterprise_objections', ['status'])


def downgrade() -> None:
    op.drop_table('enterprise_objections')
    op.drop_table('enterprise_colour_history')
    op.drop_table('enterprise_scores')
    op.drop_table('integrity_rulesets')
