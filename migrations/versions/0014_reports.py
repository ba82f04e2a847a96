"""reports: the archive of generated reports (月度分析报告, 企业预警风险信息日报)

``reports``: one row per generation: kind, period, parameters, headline figures, the DOCX and PDF files (paths
under the data dir, sha256, size), who made it and when. The digests also go into the audit chain.
``report_case_terms``: each case's key terms as jieba cut them (with the digest of the text and dictionary), so
a case is cut once, not at every report.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('period', sa.String(10), nullable=False),
        sa.Column('title', sa.String(128), nullable=False),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.Column('docx_path', sa.String(256), nullable=False),
        sa.Column('docx_sha256', sa.String(64), nullable=False),
        sa.Column('docx_size', sa.Integer(), nullable=False),
        sa.Column('pdf_path', sa.String(256), nullable=False),
        sa.Column('pdf_sha256', sa.String(64), nullable=False),
        sa.Column('pdf_size', sa.Integer(), nullable=False),
        sa.Column('generated_by', sa.String(128), nullable=False),
        sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reports_kind_period', 'reports', ['kind', 'period'])
    op.create_index('ix_reports_generated_at', 'reports', ['generated_at'])
    op.create_table(
        'report_case_terms',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(32), nullable=False),
        sa.Column('terms', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name='fk_report_case_terms_case_id', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('case_id'),
    )


def downgrade() -> None:
    op.drop_table('report_case_terms')
    op.drop_index('ix_reports_generated_at', table_name='reports')
    op.drop_index('ix_reports_kind_period', table_name='reports')
    op.drop_table('reports')
