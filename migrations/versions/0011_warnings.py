"""warnings: early-warning rules kept as data, the graded warnings they raise, the cases behind them

``warning_rules``: what a rule groups by, its window, thresholds per grade, the burst test; admins edit them.
``warnings``: one per episode on a group key; ``open_key`` (unique) holds the key until 办结, so a key never has
two open warnings; the workflow 待签收 → 已签收 → 已核实 → 处置中 → 办结 with who and when.
``warning_cases``: the cases behind each warning.
``notifications.warning_id``: a notification may be about a warning instead of a case (``case_id`` NULL).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'warning_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('group_by', sa.String(24), nullable=False),
        sa.Column('categories', sa.JSON(), nullable=False),
        sa.Column('window_days', sa.Integer(), nullable=False),
        sa.Column('min_cases', sa.Integer(), nullable=False),
        sa.Column('grades', sa.JSON(), nullable=False),
        sa.Column('burst_alpha', sa.Float(), nullable=True),
        sa.Column('burst_grade', sa.String(2), nullable=False),
        sa.Column('baseline_days', sa.Integer(), nullable=False),
        sa.Column('floor_per_day', sa.Float(), nullable=False),
        sa.Column('group_case_red', sa.Boolean(), nullable=False),
        sa.Column('repeat_red', sa.Boolean(), nullable=False),
        sa.Column('repeat_days', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(64), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', name='uq_warning_rules_name'),
    )
    op.create_table(
        'warnings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.Integer(), nullable=False),
        sa.Column('rule_version', sa.Integer(), nullable=False),
        sa.Column('group_by', sa.String(24), nullable=False),
        sa.Column('group_key', sa.String(200), nullable=False),
        sa.Column('open_key', sa.String(200), nullable=True),
        sa.Column('subject', sa.String(200), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=True),
        sa.Column('enterprise', sa.String(128), nullable=True),
        sa.Column('district', sa.String(16), nullable=True),
        sa.Column('category', sa.String(16), nullable=True),
        sa.Column('grade', sa.String(2), nullable=False),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.Column('first_case_at', _TS, nullable=False),
        sa.Column('raised_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=False),
        sa.Column('sign_due_at', _TS, nullable=False),
        sa.Column('signed_by', sa.String(64), nullable=True),
        sa.Column('signed_at', _TS, nullable=True),
        sa.Column('verdict', sa.String(8), nullable=True),
        sa.Column('verified_by', sa.String(64), nullable=True),
        sa.Column('verified_at', _TS, nullable=True),
        sa.Column('actions', sa.JSON(), nullable=False),
        sa.Column('amount_recovered', sa.BigInteger(), nullable=True),
        sa.Column('workers_covered', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.Column('closed_by', sa.String(64), nullable=True),
        sa.Column('closed_at', _TS, nullable=True),
        sa.Column('escalation_level', sa.Integer(), nullable=False),
        sa.Column('escalated_at', _TS, nullable=True),
        sa.Column('snoozed_until', _TS, nullable=True),
        sa.Column('snooze_cases', sa.Integer(), nullable=True),
        sa.Column('snooze_reason', sa.Text(), nullable=True),
        sa.Column('inhibited_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['rule_id'], ['warning_rules.id']),
        sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id']),
        sa.ForeignKeyConstraint(['inhibited_by_id'], ['warnings.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('open_key', name='uq_warnings_open_key'),
    )
    for column in ('rule_id', 'group_key', 'enterprise_id', 'district', 'grade', 'status', 'raised_at',
                   'sign_due_at', 'closed_at'):
        op.create_index(f'ix_warnings_{column}', 'warnings', [column])
    op.create_table(
        'warning_cases',
        sa.Column('warning_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('attached_at', _TS, nullable=False),
        sa.ForeignKeyConstraint(['warning_id'], ['warnings.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('warning_id', 'case_id'),
    )
    op.create_index('ix_warning_cases_case_id', 'warning_cases', ['case_id'])
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('case_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('warning_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_notifications_warning_id', 'warnings', ['warning_id'], ['id'])
        batch_op.create_unique_constraint('uq_notifications_warning_kind_user', ['warning_id', 'kind', 'username'])
        batch_op.create_index('ix_notifications_warning_id', ['warning_id'])


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_warning_id')
        batch_op.drop_constraint('uq_notifications_warning_kind_user', type_='unique')
        batch_op.drop_constraint('fk_notifications_warning_id', type_='foreignkey')
        batch_op.drop_column('warning_id')
        batch_op.alter_column('case_id', existing_type=sa.Integer(), nullable=False)
    op.drop_table('warning_cases')
    op.drop_table('warnings')
    op.drop_table('warning_rules')
