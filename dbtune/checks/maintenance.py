"""What the maintenance checks (``checks/maintenance/``) share: the user tables with their vacuum state,
autovacuum's own triggers per table, the statistics window, and the wraparound verdict.

Autovacuum's triggers follow https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM:
a table is analyzed once ``n_mod_since_analyze`` exceeds ``autovacuum_analyze_threshold +
autovacuum_analyze_scale_factor × reltuples``, each taken from the table's storage parameters where set,
else from the server's setting.
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.maintenance import TableMaintenance
from dbtune.catalog.model import Relation, Snapshot
from dbtune.checks.runner import CheckContext
from dbtune.model import Finding, Severity

# Transaction IDs and multixact IDs are 32 bits; PostgreSQL stops assigning them 2^31 − 3 M past the
# oldest unfrozen one (https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND).
WRAPAROUND_LIMIT = 2**31
WRAPAROUND_OPTIONS = {"warning_age": WRAPAROUND_LIMIT // 2, "error_age": int(WRAPAROUND_LIMIT * 0.8)}


def maintained_tables(ctx: CheckContext, part: str = "tables") -> Iterator[tuple[Relation, TableMaintenance]]:
    """The user tables and materialized views (outside ``database.exclude_schemas``) with their row of
    :class:`~dbtune.catalog.maintenance.TableMaintenance`, by schema and name. When ``part`` of the
    maintenance snapshot could not be read, records a skip and yields nothing."""
    maintenance = ctx.snapshot.maintenance
    if part not in maintenance.readable:
        ctx.skip(f"the {part} part of the maintenance snapshot could not be read (see the audit's skips)",
                 "pg_monitor")
        return
    for rel in sorted(ctx.user_relations(), key=lambda r: (r.schema, r.name)):
        tm = maintenance.tables.get(rel.oid)
        if tm is not None:
            yield rel, tm


def table_setting(snap: Snapshot, tm: TableMaintenance, name: str) -> float:
    """Autovacuum parameter ``name`` for one table: its storage parameter where set, else the server's."""
    value = tm.reloptions.get(name)
    if value is None:
        value = snap.setting(name) or "0"
    return float(value)


def analyze_trigger(snap: Snapshot, rel: Relation, tm: TableMaintenance) -> float:
    """The ``n_mod_since_analyze`` above which autovacuum analyzes ``rel`` (rows)."""
    return table_setting(snap, tm, "autovacuum_analyze_threshold") + \
        table_setting(snap, tm, "autovacuum_analyze_scale_factor") * max(rel.reltuples, 0.0)


def stats_window_hours(snap: Snapshot) -> float:
    """Hours since :attr:`Snapshot.stats_since` (``stats_reset``, or the server's start)."""
    return (snap.server.now - snap.stats_since).total_seconds() / 3600


def young_statistics(ctx: CheckContext) -> bool:
    """True (and a skip recorded) when the statistics window is shorter than the check's
    ``min_stats_age_hours`` option: counters and last-run times are lost at a stats reset and a crash."""
    hours = stats_window_hours(ctx.snapshot)
    if hours < ctx.options["min_stats_age_hours"]:
        ctx.skip(f"statistics cover {hours:.1f} h (since {ctx.snapshot.stats_basis}); "
                 f"min_stats_age_hours is {ctx.options['min_stats_age_hours']}")
        return True
    return False


def wraparound_severity(ctx: CheckContext, age: int) -> Severity | None:
    """``error`` at ``error_age`` or more, ``warning`` at ``warning_age`` or more, else None."""
    if age >= ctx.options["error_age"]:
        return Severity.ERROR
    if age >= ctx.options["warning_age"]:
        return Severity.WARNING
    return None


def share_of_limit(age: int) -> str:
    """``age`` as a share of the 2^31 wraparound limit (``"51.2 %"``)."""
    return f"{100 * age / WRAPAROUND_LIMIT:.1f} %"


# Per kind of ID: the TableMaintenance attribute of the heap's age, the ID's name, its unit, and the
# setting at which autovacuum starts an aggressive vacuum (with its default).
_WRAPAROUND_KINDS = {
    "xid": ("xid_age", "oldest unfrozen transaction ID", "transactions", "autovacuum_freeze_max_age",
            200_000_000),
    "mxid": ("mxid_age", "oldest multixact ID", "multixacts", "autovacuum_multixact_freeze_max_age",
             400_000_000),
}


def table_wraparound_findings(ctx: CheckContext, kind: str) -> Iterator[Finding]:
    """The wraparound findings of ``kind`` (``"xid"``: ``age(relfrozenxid)``, ``"mxid"``:
    ``mxid_age(relminmxid)``) per table, each judging the older of the heap and its TOAST table."""
    attribute, what, unit, setting, default = _WRAPAROUND_KINDS[kind]
    freeze_max_age = int(ctx.snapshot.setting(setting) or default)
    for rel, tm in maintained_tables(ctx):
        heap_age, toast_age = getattr(tm, attribute), getattr(tm, f"toast_{attribute}")
        toast_older = toast_age is not None and toast_age > heap_age
        age = toast_age if toast_older else heap_age
        severity = wraparound_severity(ctx, age)
        if severity is None:
            continue
        owner = "its TOAST table's" if toast_older else "its"
        yield ctx.finding(
            rel.qualified_name,
            f"{rel.qualified_name}: {owner} {what} is {age:,} {unit} old ({share_of_limit(age)} of the 2^31 "
            f"wraparound limit; {setting} is {freeze_max_age:,})",
            evidence={attribute: heap_age, f"toast_{attribute}": toast_age, setting: freeze_max_age},
            severity=severity)
