"""Alembic environment: runs the migrations on the connection gridline hands over."""

from alembic import context

from dispatch.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # the alembic command line: connect from the configured URL
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
