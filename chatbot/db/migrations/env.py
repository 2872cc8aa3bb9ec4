"""Alembic environment: always run programmatically on a connection from ``chatbot.db.schema``."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel

import chatbot.db.models  # noqa: F401  (registers every table on SQLModel.metadata)
from chatbot.db.schema import include_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `chatbot db upgrade` (chatbot.db.schema)")

options: dict[str, Any] = {
    "connection": connection,
    "target_metadata": SQLModel.metadata,
    "include_name": include_name,
    "compare_type": True,
    "render_as_batch": connection.dialect.name == "sqlite",  # SQLite alters by table copy
}
context.configure(**options)
with context.begin_transaction():
    context.run_migrations()
