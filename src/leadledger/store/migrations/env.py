"""Alembic environment: runs the shipped migrations on the connection `leadledger.store.db.migrate` hands over."""

from alembic import context
from sqlalchemy import create_engine

from leadledger.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` command line: build a connection from the URL
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///leadledger.db")
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
