"""Alembic environment: migrations run on the connection `hal.db.migrate` hands over."""

from __future__ import annotations

from alembic import context

from hal.db.migrate import include_object, render_item
from hal.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through hal.db.migrate (hal serve does it at start)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
