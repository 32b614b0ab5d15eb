"""Where the benchmarked queries come from: :mod:`dbtune.workload`, under the names the benchmark has
always used.

A workload file is a SQL script whose statements pglast splits (psql meta-commands and ``:var``
placeholders allowed, see :mod:`dbtune.workload.sqlfile`), optionally annotated::

    -- name: orders-by-status
    SELECT id FROM orders WHERE status = $1 ORDER BY created_at DESC LIMIT 50;
    -- params: SELECT 'pending'

(``-- name:`` names the next statement, ``-- params:`` after it gives SQL returning rows of values for
``$1``, ``$2`` …; a bare ``-- params: SELECT`` means no parameters). Unnamed statements are named
``<file stem>-<n>``. pg_stat_statements supplies the top N statements by ``total_exec_time``, top-level
only, named ``pgss:<queryid>``.
"""

from dbtune.workload.load import (
    from_pg_stat_statements,
    load_workload,
    parse_workload,
    pg_stat_statements_workload,
)
from dbtune.workload.model import WorkloadQuery
from dbtune.workload.pgss import PGSS_COLUMNS, PGSS_LOCATION, PGSS_TOP
from dbtune.workload.statements import fields, statement_kind

__all__ = [
    "PGSS_COLUMNS", "PGSS_LOCATION", "PGSS_TOP", "WorkloadQuery", "fields", "from_pg_stat_statements",
    "load_workload", "parse_workload", "pg_stat_statements_workload", "statement_kind",
]
