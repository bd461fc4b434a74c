"""Alembic environment for vigil's SQLite memory.

In the app, ``agent.memory.db.upgrade`` passes its own connection in
``config.attributes["connection"]`` and the app's logging is left alone. From the command
line (``alembic upgrade head`` in a checkout) the database comes from ``-x db=PATH``, else
``VIGIL_DB``, else the default path.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from agent.memory.schema import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move batches
    )
    with context.begin_transaction():
        context.run_migrations()


def _standalone() -> None:
    from agent.config import default_db_path
    from agent.memory.db import open_engine, transactional_engine

    if config.config_file_name is not None and os.path.exists(config.config_file_name):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    target = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("VIGIL_DB")
    plain = open_engine(target or default_db_path())
    engine = transactional_engine(plain)  # a migration lands whole or not at all
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()
    plain.dispose()


if context.is_offline_mode():
    raise SystemExit("vigil's migrations run online only")

passed = config.attributes.get("connection")
if passed is not None:
    _run(passed)
else:
    _standalone()
