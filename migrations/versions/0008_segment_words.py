"""segment words: each post-call segment's words with when they were said, for highlighting and seeking

``segments.words``: a JSON list of [start, end, text] (seconds from the recording's start), the texts
concatenating to the segment's text; NULL for segments transcribed before this revision and for hand-made
ones (read as no words).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('words', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_column('words')
