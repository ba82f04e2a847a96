"""retention: recordings deleted after their channel's retention period leave a tombstone; legal hold on cases

``recordings.deleted_at``: when the retention sweep deleted the recording's bytes (NULL: still on file); the row
stays (sha256, sizes, channel), its wrapped data key is wiped. ``cases.legal_hold`` (+ reason, who, when): a case
in dispute whose recording the sweep must keep whatever its age.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite has it): batch mode would reflect the cases table, whose expression indexes (0015)
    # reflection cannot read
    op.add_column('recordings', sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('cases', sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('cases', sa.Column('legal_hold_reason', sa.String(500), nullable=True))
    op.add_column('cases', sa.Column('legal_hold_by', sa.String(64), nullable=True))
    op.add_column('cases', sa.Column('legal_hold_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ('legal_hold_at', 'legal_hold_by', 'legal_hold_reason', 'legal_hold'):
        op.drop_column('cases', column)  # SQLite 3.35+ drops columns itself
    op.drop_column('recordings', 'deleted_at')
