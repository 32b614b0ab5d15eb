"""The one exception hierarchy and the exit codes.

Every error dbtune raises on purpose is a :class:`DbtuneError`. The CLI catches it at its boundary and
prints one ``error:`` line that names the file, key or object at fault, then exits with the error's
:class:`ExitCode`. Library code never prints or exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (DESIGN.md, "Commands")."""

    CLEAN = 0
    FINDINGS = 1
    USAGE = 2
    CONNECTION = 3


class DbtuneError(Exception):
    """Base of every error dbtune raises deliberately. ``str(err)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(DbtuneError):
    """Bad command-line usage or input file (exit 2)."""


class ConfigError(DbtuneError):
    """A config file that cannot be read, has an unknown key, a wrong type, or names a missing object."""


class CatalogueError(DbtuneError):
    """A check in the catalogue (built-in or user-supplied) is malformed."""


class ConnectionFailed(DbtuneError):
    """The server could not be reached, refused the login, or has no such database (exit 3)."""

    exit_code = ExitCode.CONNECTION


class ServerRefused(DbtuneError):
    """The server answered but refused what was asked (exit 3)."""

    exit_code = ExitCode.CONNECTION
