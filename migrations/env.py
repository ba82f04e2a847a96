"""Alembic environment. The connection comes from app.db.Database.upgrade(); from the alembic CLI, the URL
comes from Settings (HOTLINE_DATABASE_URL / HOTLINE_DATA_DIR)."""

from alembic import context

from app.config import Settings
from app.db import Base, make_engine
from app.models import load_all

load_all()
target_metadata = Base.metadata


def run() -> None:
    conn = context.config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(Settings().sqlalchemy_url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
