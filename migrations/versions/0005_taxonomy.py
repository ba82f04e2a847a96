"""taxonomy: the editable 12351 taxonomy and the domain lexicon (categorization owner)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.cases.categorize import DEFAULT_TAXONOMY

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    categories = op.create_table(
        'taxonomy_categories',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(16), nullable=False),
        sa.Column('description', sa.String(200), nullable=False, server_default=''),
        sa.Column('terms', sa.JSON(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'lexicon_terms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('term', sa.String(64), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('added_by', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('term'),
    )
    op.create_index('ix_lexicon_terms_kind', 'lexicon_terms', ['kind'], unique=False)
    # The default 12351 taxonomy, as of this revision; admins edit it from here on.
    now = datetime.now(UTC)
    op.bulk_insert(categories, [
        {'name': c.name, 'description': c.description, 'terms': list(c.terms), 'position': i, 'active': True,
         'updated_at': now}
        for i, c in enumerate(DEFAULT_TAXONOMY)
    ], multiinsert=False)


def downgrade() -> None:
    op.drop_index('ix_lexicon_terms_kind', table_name='lexicon_terms')
    op.drop_table('lexicon_terms')
    op.drop_table('taxonomy_categories')
