"""Errors raised by dbtune's revisions while Alembic runs them. Each is both Alembic's ``CommandError``
(so ``alembic upgrade`` prints it as one ``FAILED:`` line, without a traceback) and a dbtune error (one
``error:`` line through ``dbtune migrate apply``). Kept apart from :mod:`dbtune.migrate.runtime`, which the
CLI imports, because importing Alembic takes a second or two; this module is imported only to raise."""

from __future__ import annotations

from alembic.util import CommandError

from dbtune.errors import UsageError


class InsideCallersTransaction(UsageError, CommandError):
    """A revision's step must run outside any transaction block (``CREATE INDEX CONCURRENTLY``), but Alembic
    runs inside a transaction that its caller opened and that Alembic therefore cannot end (exit 2)."""
