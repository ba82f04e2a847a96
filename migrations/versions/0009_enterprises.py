"""enterprises: the enterprise registry (企业库), the names it is heard and typed as, and cases linked to it

``enterprises``: one row per registered enterprise, its canonical name and 统一社会信用代码 unique.
``enterprise_aliases``: other spellings of an enterprise's name (imported 别名, confirmed by staff on a case,
corrected in a transcript), each pointing at one enterprise.
``cases.enterprise_id``: the registered enterprise a case is about (NULL until someone links it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'enterprises',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(128), nullable=False),
        sa.Column('credit_code', sa.String(18), nullable=True),
        sa.Column('district', sa.String(16), nullable=True),
        sa.Column('address', sa.String(256), nullable=False, server_default=''),
        sa.Column('industry', sa.String(64), nullable=False, server_default=''),
        sa.Column('enterprise_type', sa.String(8), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', name='uq_enterprises_name'),
        sa.UniqueConstraint('credit_code', name='uq_enterprises_credit_code'),
    )
    op.create_index('ix_enterprises_district', 'enterprises', ['district'], unique=False)
    op.create_index('ix_enterprises_updated_at', 'enterprises', ['updated_at'], unique=False)
    op.create_table(
        'enterprise_aliases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('alias', sa.String(128), nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['enterprise_id'], ['enterprises.id'], name='fk_enterprise_aliases_enterprise_id',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('alias', name='uq_enterprise_aliases_alias'),
    )
    op.create_index('ix_enterprise_aliases_enterprise_id', 'enterprise_aliases', ['enterprise_id'], unique=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enterprise_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_cases_enterprise_id', ['enterprise_id'], unique=False)
        batch_op.create_foreign_key('fk_cases_enterprise_id', 'enterprises', ['enterprise_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint('fk_cases_enterprise_id', type_='foreignkey')
        batch_op.drop_index('ix_cases_enterprise_id')
        batch_op.drop_column('enterprise_id')
    op.drop_index('ix_enterprise_aliases_enterprise_id', table_name='enterprise_aliases')
    op.drop_table('enterprise_aliases')
    op.drop_index('ix_enterprises_updated_at', table_name='enterprises')
    op.drop_index('ix_enterprises_district', table_name='enterprises')
    op.drop_table('enterprises')
