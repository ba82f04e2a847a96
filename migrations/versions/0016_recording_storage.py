"""recording storage: where each recording's bytes are, and the key they are encrypted with

``recordings.storage``: the store holding the file (``local`` = the data dir of the node that filed it, or
``s3://bucket/prefix``); ``key_id`` and ``wrapped_key``: the recording's own data key, wrapped by master key
``key_id`` (both null: stored in clear, as before this revision); ``stored_size``: bytes in the store.
``storage_moves``: recordings copied and verified by ``hotline storage migrate``, so a move can resume.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recordings') as batch:
        batch.add_column(sa.Column('storage', sa.String(255), nullable=False, server_default='local'))
        batch.add_column(sa.Column('key_id', sa.String(32), nullable=True))
        batch.add_column(sa.Column('wrapped_key', sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column('stored_size', sa.BigInteger(), nullable=True))
    op.create_table(
        'storage_moves',
        sa.Column('recording_id', sa.Integer(), sa.ForeignKey('recordings.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('target', sa.String(255), primary_key=True),
        sa.Column('verified_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('storage_moves')
    with op.batch_alter_table('recordings') as batch:
        batch.drop_column('stored_size')
        batch.drop_column('wrapped_key')
        batch.drop_column('key_id')
        batch.drop_column('storage')
