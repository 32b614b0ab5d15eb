"""Where queries come from, and which columns they use.

Sources (each gives :class:`Query` objects with their text as sent, location, pglast fingerprint, and
calls/time when known)::

    result = load_queries("workload.sql")       # a psql/pgbench script, or a server log (stderr, csvlog,
    result = load_queries("-")                  # jsonlog), or standard input; result.errors: bad statements
    result = load_queries("q1.sql", workload_format="qgen")   # psql, pgbench, qgen, plain; detected if None
    top = pg_stat_statements_queries(settings_or_conn, top=20, include_nested=False)

Column usage, resolved against the catalog (sqlglot's qualifier; expressions rendered by pglast)::

    schema = WorkloadSchema.from_snapshot(snapshot, read_views(conn))
    usage = column_usage("SELECT … WHERE lower(email) = $1", schema)
    usage.table("public.users").columns["id"]          # frozenset({Usage.EQUALITY})
    usage.table("public.users").sort_keys               # ORDER BY keys with directions, per clause
    usage.table("public.users").constants               # status = 'pending', … (for partial indexes)
"""

from typing import TYPE_CHECKING

from dbtune.lazy import lazy_attributes
from dbtune.workload.formats import WorkloadFormat, detect_format
from dbtune.workload.load import (
    from_pg_stat_statements,
    load_queries,
    load_workload,
    parse_workload,
    pg_stat_statements_workload,
)
from dbtune.workload.model import (
    ConstantPredicate,
    ExpressionUse,
    LoadResult,
    PredicateOp,
    Query,
    QueryUsage,
    SortKey,
    Source,
    SourceError,
    TableUsage,
    Usage,
    WorkloadQuery,
    group_by_fingerprint,
)
from dbtune.workload.pgss import pg_stat_statements_queries
from dbtune.workload.schema import SchemaRelation, WorkloadSchema, read_views
from dbtune.workload.statements import statement_kind

if TYPE_CHECKING:
    from dbtune.workload.usage import UsageAnalyzer, column_usage

# sqlglot (dbtune.workload.usage), only where column usage is resolved: not for reading queries
__getattr__ = lazy_attributes(__name__, {"UsageAnalyzer": "dbtune.workload.usage",
                                         "column_usage": "dbtune.workload.usage"})

__all__ = [
    "ConstantPredicate", "PredicateOp", "SortKey",
    "ExpressionUse", "LoadResult", "Query", "QueryUsage", "SchemaRelation", "Source", "SourceError", "TableUsage",
    "Usage", "UsageAnalyzer", "WorkloadFormat", "WorkloadQuery", "WorkloadSchema", "column_usage", "detect_format",
    "from_pg_stat_statements",
    "group_by_fingerprint", "load_queries", "load_workload", "parse_workload", "pg_stat_statements_queries",
    "pg_stat_statements_workload", "read_views", "statement_kind",
]
