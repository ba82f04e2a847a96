"""auth hardening: sessions that end, a per-user token version, the login throttle

``users.token_version``: in every login token; raised by a password reset or change, a role change or a
(de)activation, which ends all the user's tokens at once. ``auth_sessions``: one row per login (its tokens carry
the id): revoked by logout, refused after the idle timeout. ``login_throttle``: failed-login counters per account,
per source address and for the whole site (backoff and the attack alert), shared by every API process.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('token_version', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'auth_sessions',
        sa.Column('id', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('client', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_auth_sessions_user_id', 'auth_sessions', ['user_id'])
    op.create_index('ix_auth_sessions_last_seen_at', 'auth_sessions', ['last_seen_at'])
    op.create_table(
        'login_throttle',
        sa.Column('key', sa.String(128), primary_key=True),
        sa.Column('failures', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_login_throttle_last_failure_at', 'login_throttle', ['last_failure_at'])


def downgrade() -> None:
    op.drop_index('ix_login_throttle_last_failure_at', table_name='login_throttle')
    op.drop_table('login_throttle')
    op.drop_index('ix_auth_sessions_last_seen_at', table_name='auth_sessions')
    op.drop_index('ix_auth_sessions_user_id', table_name='auth_sessions')
    op.drop_table('auth_sessions')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('token_version')
