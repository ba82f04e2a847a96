"""transcript edits: people correct transcript segments; fields people set or confirmed stay as they set them

``segments.machine_text``: the text as the machine first produced it (NULL until the first edit);
``segments.edited_by`` / ``edited_at``: who corrected the segment last, and when (NULL: machine text);
``segments.version``: 0 as transcribed, one more on each edit (a stale edit is refused with 409).
``cases.locked_fields``: JSON list of the case fields a person set or confirmed: re-extraction (after a
correction, ``hotline cases refresh``) leaves them alone. Filled here from what is on file already: every
editable field of a confirmed case, and the fields staff changed (``case.updated`` audit events by users).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# app.cases.service.EDITABLE as of this revision (a migration does not import the app's code)
_EDITABLE = ("age_bracket", "amount", "arrears_type", "category", "difficulty", "district", "enterprise",
             "enterprise_type", "gender", "occupation", "summary", "workers")


def upgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('machine_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('edited_by', sa.String(64), nullable=True))
        batch_op.add_column(sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_fields', sa.JSON(), nullable=True))
    _lock_what_people_set()


def _lock_what_people_set() -> None:
    conn = op.get_bind()
    locked: dict[int, set[str]] = {}
    for case_id, confirmed_by in conn.execute(sa.text("SELECT id, confirmed_by FROM cases")):
        locked[int(case_id)] = set(_EDITABLE) if confirmed_by else set()
    rows = conn.execute(sa.text(
        "SELECT subject_id, details FROM audit_events WHERE action = 'case.updated' AND actor LIKE 'user:%'"))
    for subject_id, details in rows:
        data = json.loads(details) if isinstance(details, str) else details
        field = (data or {}).get("field")
        if str(subject_id).isdigit() and int(subject_id) in locked and field in _EDITABLE:
            locked[int(subject_id)].add(field)
    cases = sa.table('cases', sa.column('id', sa.Integer), sa.column('locked_fields', sa.JSON))
    for case_id, fields in locked.items():
        if fields:
            conn.execute(sa.update(cases).where(cases.c.id == case_id).values(locked_fields=sorted(fields)))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('locked_fields')
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('edited_at')
        batch_op.drop_column('edited_by')
        batch_op.drop_column('machine_text')
