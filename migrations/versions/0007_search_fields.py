"""search_fields: one full-text document per case (fields + everything said), ranked (search owner)

Which cases match is now decided on a document per case, so that every word of a query may be said in a
different segment and the exact total is one index lookup, not a GROUP BY over a million segments.
search_entries stays (it is what a hit shows); its own per-entry full-text index is dropped.

SQLite: ``search_docs`` + an FTS5 external-content table ``search_docs_fts(fields, said)`` (rowid = case
id, kept in step by triggers, ranked with bm25). jieba tokens may hold + # & . _ % - (9.5, c++, 50%), so
those are token characters for FTS5 as they are single lexemes on PostgreSQL.
PostgreSQL: ``search_docs.tsv`` (tsvector with positions, fields weighted A) under a GIN index; the
application writes it (service.tsvector_literal); rows filled here from older entries get no positions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SQLITE_UP = [
    "DROP TRIGGER IF EXISTS search_entries_ai",
    "DROP TRIGGER IF EXISTS search_entries_ad",
    "DROP TRIGGER IF EXISTS search_entries_au",
    "DROP TABLE IF EXISTS search_fts",
    "CREATE VIRTUAL TABLE search_docs_fts USING fts5(fields, said, content='search_docs',"
    " content_rowid='case_id', tokenize=\"unicode61 remove_diacritics 0 tokenchars '+#&._%-'\")",
    "CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN"
    " INSERT INTO search_docs_fts(rowid, fields, said) VALUES (new.case_id, new.fields, new.said); END",
    "CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN"
    " INSERT INTO search_docs_fts(search_docs_fts, rowid, fields, said)"
    " VALUES ('delete', old.case_id, old.fields, old.said); END",
    "CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN"
    " INSERT INTO search_docs_fts(search_docs_fts, rowid, fields, said)"
    " VALUES ('delete', old.case_id, old.fields, old.said);"
    " INSERT INTO search_docs_fts(rowid, fields, said) VALUES (new.case_id, new.fields, new.said); END",
    """INSERT INTO search_docs (case_id, fields, said)
       SELECT case_id,
              coalesce(group_concat(CASE WHEN segment_id IS NULL THEN tokens END, ' '), ''),
              coalesce(group_concat(CASE WHEN segment_id IS NOT NULL THEN tokens END, ' '), '')
       FROM (SELECT * FROM search_entries ORDER BY case_id, start, id) GROUP BY case_id""",
]
POSTGRES_UP = [
    "DROP INDEX IF EXISTS ix_search_entries_fts",
    """INSERT INTO search_docs (case_id, fields, said, tsv)
       SELECT case_id, fields, said,
              setweight(array_to_tsvector(string_to_array(fields, ' ')), 'A')
              || array_to_tsvector(string_to_array(said, ' '))
       FROM (SELECT case_id,
                    coalesce(string_agg(tokens, ' ' ORDER BY id) FILTER (WHERE segment_id IS NULL
                             AND tokens <> ''), '') AS fields,
                    coalesce(string_agg(tokens, ' ' ORDER BY start, id) FILTER (WHERE segment_id IS NOT NULL
                             AND tokens <> ''), '') AS said
             FROM search_entries GROUP BY case_id) AS e""",
    "CREATE INDEX ix_search_docs_tsv ON search_docs USING gin (tsv)",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        'search_docs',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('fields', sa.Text(), nullable=False),
        sa.Column('said', sa.Text(), nullable=False),
        *([sa.Column('tsv', postgresql.TSVECTOR(), nullable=False)] if dialect == "postgresql" else []),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
        sa.PrimaryKeyConstraint('case_id'),
    )
    for statement in (SQLITE_UP if dialect == "sqlite" else POSTGRES_UP):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in (
            "DROP TABLE search_docs_fts",
            "CREATE VIRTUAL TABLE search_fts USING fts5(tokens, content='search_entries', content_rowid='id',"
            " tokenize='unicode61 remove_diacritics 0')",
            "INSERT INTO search_fts(search_fts) VALUES ('rebuild')",
            "CREATE TRIGGER search_entries_ai AFTER INSERT ON search_entries BEGIN"
            " INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
            "CREATE TRIGGER search_entries_ad AFTER DELETE ON search_entries BEGIN"
            " INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END",
            "CREATE TRIGGER search_entries_au AFTER UPDATE ON search_entries BEGIN"
            " INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens);"
            " INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
        ):
            op.execute(statement)
    else:
        op.execute("CREATE INDEX ix_search_entries_fts ON search_entries"
                   " USING gin (array_to_tsvector(string_to_array(tokens, ' ')))")
    op.drop_table('search_docs')
