"""notifications: in-app notifications and SLA reminders (workflow owner)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'kind', 'username', name='uq_notifications_case_kind_user'),
    )
    op.create_index('ix_notifications_case_id', 'notifications', ['case_id'])
    op.create_index('ix_notifications_user_created', 'notifications', ['username', 'created_at'])
    op.create_index('ix_notifications_pending', 'notifications', ['delivered_at', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_notifications_pending', table_name='notifications')
    op.drop_index('ix_notifications_user_created', table_name='notifications')
    op.drop_index('ix_notifications_case_id', table_name='notifications')
    op.drop_table('notifications')
