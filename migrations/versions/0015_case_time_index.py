"""case time index: when a case was accepted (受理, else created), the time early warnings count cases by

``ix_cases_case_at`` on ``coalesce(accepted_at, created_at)``: the warnings' windows, baselines and peer rates
select cases by it (an expression index, on SQLite and PostgreSQL alike); ``ix_cases_enterprise_at`` and
``ix_cases_district_category_at``: a key's cases in a period (a case just filed is evaluated against them).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    at = sa.text('coalesce(accepted_at, created_at)')
    op.create_index('ix_cases_case_at', 'cases', [at])
    op.create_index('ix_cases_enterprise_at', 'cases', ['enterprise_id', at])
    op.create_index('ix_cases_district_category_at', 'cases', ['district', 'category', at])


def downgrade() -> None:
    op.drop_index('ix_cases_district_category_at', table_name='cases')
    op.drop_index('ix_cases_enterprise_at', table_name='cases')
    op.drop_index('ix_cases_case_at', table_name='cases')
