"""Alembic environment for dbtune's migrations: the target and the run come from dbtune
(``dbtune migrate apply``, or ``alembic upgrade head`` with DATABASE_URL / PG* variables set)."""

from alembic import context

from dbtune.migrate.env import run_env

run_env(context)
