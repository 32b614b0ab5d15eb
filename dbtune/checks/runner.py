"""Run the catalogue against a snapshot and a config; turn results into findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dbtune.appconfig.model import AppConfig
from dbtune.appconfig.plan import PoolPlan, pool_plan
from dbtune.catalog.model import Relation, Skip, Snapshot
from dbtune.checks.registry import Catalogue, Check, CheckMeta, option_problem
from dbtune.config.messages import did_you_mean
from dbtune.config.model import Config
from dbtune.errors import ConfigError
from dbtune.model import Change, Finding, Severity
from dbtune.sqlnames import qualified
from dbtune.workload.model import Query


@dataclass(frozen=True)
class CheckContext:
    """What a check receives: the snapshot, the config, its own options, and a finding factory; the
    application's configuration, and ``workload``: the audit's workload statements in file order (a
    workload file's, ungrouped; empty without one)."""

    snapshot: Snapshot
    config: Config
    meta: CheckMeta
    options: dict[str, Any]
    severity: Severity
    skipped: list[Skip] = field(default_factory=list)
    app_config: AppConfig = field(default_factory=AppConfig)
    workload: tuple[Query, ...] = ()

    def pool_plan(self) -> PoolPlan:
        """The config's pools and PgBouncer merged with the application's own configuration, each value with
        its source (:func:`dbtune.appconfig.plan.pool_plan`)."""
        return pool_plan(self.config, self.app_config)

    def skip(self, reason: str, privilege: str | None = None) -> None:
        """Record that this check could not judge (too young statistics, a missing privilege …)."""
        self.skipped.append(Skip(self.meta.name, reason, privilege))

    def finding(self, object: str, message: str, *, evidence: dict[str, Any] | None = None,
                changes: Iterable[Change] = (), severity: Severity | None = None) -> Finding:
        """A :class:`Finding` carrying this check's id, name and (configured) severity."""
        return Finding(check_id=self.meta.id, check_name=self.meta.name, severity=severity or self.severity,
                       object=object, message=message, evidence=dict(evidence or {}), changes=tuple(changes))

    def user_relations(self) -> list[Relation]:
        """Relations outside the config's ``database.exclude_schemas``."""
        excluded = set(self.config.database.exclude_schemas)
        return [r for r in self.snapshot.relations.values() if r.schema not in excluded]

    def application_roles(self) -> list[str]:
        """Roles named by ``database.application_roles`` and the ``[[pool]]`` entries, in order, once each."""
        names = [*self.config.database.application_roles, *(p.role for p in self.config.pool if p.role)]
        return list(dict.fromkeys(names))

    def resolve_table(self, name: str, key: str) -> Relation:
        """A relation named in the config; a missing one is a :class:`ConfigError` naming ``key``."""
        rel = self.snapshot.find_relation(name, tuple(self.config.database.search_path))
        other = self.snapshot.find_other_relation(name, tuple(self.config.database.search_path)) \
            if rel is None else None
        if other is not None:
            schema, relname, kind = other
            what, why = _NOT_A_TABLE.get(kind, ("not a table", ""))
            raise ConfigError(f"{key}: {qualified(schema, relname)} is {what}, not a table{why}")
        if rel is None:
            raise ConfigError(f"{key}: table {name!r} does not exist in database "
                              f"{self.snapshot.server.database!r} (search_path: "
                              f"{', '.join(self.config.database.search_path)})")
        return rel


# What a relation that is not a table is, by relkind, and why an expectation cannot name it.
_NOT_A_TABLE = {
    "v": ("a view", ": a view stores no rows, so it has no indexes or constraints; name the tables it reads"),
    "f": ("a foreign table", ": PostgreSQL builds no index on a foreign table and enforces no constraint of "
                             "one; the expectation belongs on the remote server's table"),
    "S": ("a sequence", ""),
    "c": ("a composite type", ""),
}


@dataclass
class AuditResult:
    """Findings in catalogue order, and what could not run."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    checks_run: list[str] = field(default_factory=list)


# Checks of these areas read migration files, not a database: ``dbtune migrate lint`` runs them.
FILE_AREAS = frozenset({"migrations"})
# Checks of these areas read EXPLAIN plans, not the snapshot: :func:`dbtune.plans.run_plan_checks` runs them.
PLAN_AREAS = frozenset({"plans"})
# Checks that read the advisor's advice, not the snapshot: :func:`dbtune.checks.advice.run_advice_checks` runs them.
ADVICE_CHECKS = frozenset({"index-recommended"})


def no_check_message(name: str, catalogue: Catalogue) -> str:
    """``no check named 'x'`` with the check name, id or alias it is close to, or where to look."""
    known = [k for c in catalogue for k in (c.meta.name, c.meta.id, *c.meta.aliases)]
    return f"no check named {name!r}" + (did_you_mean(name, known) or " (see `dbtune checks list`)")


def check_config_problems(catalogue: Catalogue, checks: Mapping[str, Any], select: Iterable[str] = (),
                          ignore: Iterable[str] = ()) -> list[str]:
    """Every problem of a config's ``[checks.<name>]`` tables and ``audit.select``/``audit.ignore`` names
    against ``catalogue``, one plain sentence each: a name that is no check, an unknown option (with the
    option it is close to), a severity or an option value of the wrong kind."""
    problems = [f"'audit.{key}': {no_check_message(name, catalogue)}"
                for key, names in (("select", select), ("ignore", ignore)) for name in names
                if catalogue.get(name) is None]
    for name, user in checks.items():
        found = catalogue.get(name)
        if found is None:
            problems.append(f"'checks.{name}': {no_check_message(name, catalogue)}")
        elif isinstance(user, Mapping):
            problems += _option_problems(found, name, user)
    return problems


def _option_problems(check: Check, name: str, user: Mapping[str, Any]) -> list[str]:
    problems = []
    if "severity" in user and user["severity"] not in {s.value for s in Severity}:
        problems.append(f"'checks.{name}.severity': must be error, warning or info, got {user['severity']!r}")
    for key, value in user.items():
        if key == "severity":
            continue
        if key not in check.meta.options:
            known = ", ".join(sorted(check.meta.options)) or "none"
            problems.append(f"unknown key 'checks.{name}.{key}'"
                            + (did_you_mean(key, check.meta.options) or f" (options of this check: {known})"))
            continue
        problem = option_problem(check.meta, key, value)
        if problem is not None:
            problems.append(f"'checks.{name}.{key}': {problem}")
    return problems


def _snapshot_check(check: Check) -> bool:
    return check.meta.area not in FILE_AREAS | PLAN_AREAS and check.meta.name not in ADVICE_CHECKS


def _selected(catalogue: Catalogue, config: Config, select: Iterable[str] = (),
              ignore: Iterable[str] = (), keep: Callable[[Check], bool] = _snapshot_check) -> list[Check]:
    """The checks ``keep`` admits (by default the snapshot's) that the config's and the caller's
    select/ignore lists keep. Raises :class:`ConfigError` for a name that is no check."""
    chosen = [c for c in catalogue if keep(c)]
    wanted = [*config.audit.select, *select]
    unwanted = [*config.audit.ignore, *ignore]
    problems = check_config_problems(catalogue, {key: None for key in config.checks}, config.audit.select,
                                     config.audit.ignore)
    problems += [f"{option}: {no_check_message(name, catalogue)}" for option, names in (("--select", select),
                                                                               ("--ignore", ignore))
                 for name in names if catalogue.get(name) is None]
    if problems:
        raise ConfigError("; ".join(problems))
    if wanted:
        ids = {catalogue.get(k).meta.id for k in wanted}  # type: ignore[union-attr]
        chosen = [c for c in chosen if c.meta.id in ids]
    drop = {catalogue.get(k).meta.id for k in unwanted}  # type: ignore[union-attr]
    return [c for c in chosen if c.meta.id not in drop]


def _options(check: Check, config: Config) -> tuple[dict[str, Any], Severity]:
    user: dict[str, Any] = {}
    for key in (check.meta.name, check.meta.id, *check.meta.aliases):
        user.update(config.checks.get(key, {}))
    problems = _option_problems(check, check.meta.name, user)
    if problems:
        raise ConfigError("; ".join(problems))
    severity = Severity(user.pop("severity")) if "severity" in user else check.meta.severity
    return {**check.meta.options, **user}, severity


def run_checks(catalogue: Catalogue, snapshot: Snapshot, config: Config, *, select: Iterable[str] = (),
               ignore: Iterable[str] = (), app_config: AppConfig | None = None,
               workload: Iterable[Query] = ()) -> AuditResult:
    """Run every selected check; ``app_config`` is what the application's own configuration declares (its
    pools and poolers join the config's); ``workload`` the statements the workload checks read, in order.
    Raises :class:`ConfigError` for unknown check names or options, and
    whatever :class:`~dbtune.errors.DbtuneError` a check raises for config that names missing objects."""
    result = AuditResult(skipped=list(snapshot.skipped))
    unread = frozenset(snapshot.relations[oid].qualified_name for oid in snapshot.unread_tables
                       if oid in snapshot.relations)
    for check in _selected(catalogue, config, select, ignore):
        options, severity = _options(check, config)
        if snapshot.server.version_num < check.meta.min_version_num:
            result.skipped.append(Skip(check.meta.name, f"needs server_version_num >= "
                                                        f"{check.meta.min_version_num}"))
            continue
        ctx = CheckContext(snapshot, config, check.meta, options, severity, result.skipped,
                           app_config or AppConfig(), tuple(workload))
        result.findings.extend(f for f in check.run(ctx) if not _on_unread_table(f, unread))
        result.checks_run.append(check.meta.id)
    result.findings = one_drop_finding_per_index(result.findings)
    return result


# The checks whose finding proposes dropping its index, strongest first: an index one of them reports is
# reported by the strongest only (issue 10, one finding per problem).
DROP_CHECKS = ("duplicate-index", "redundant-index", "index-overlaps-include-index", "unused-index")


def one_drop_finding_per_index(findings: list[Finding]) -> list[Finding]:
    """``findings`` with at most one of :data:`DROP_CHECKS` per index (its ``object``): the strongest is
    kept, in its place, with ``also_reported_as`` in its evidence naming the others (an unused duplicate
    is a ``duplicate-index`` finding whose evidence says ``unused-index`` too); the others are left out."""
    rank = {name: n for n, name in enumerate(DROP_CHECKS)}
    by_index: dict[str, list[Finding]] = {}
    for f in findings:
        if f.check_name in rank:
            by_index.setdefault(f.object, []).append(f)
    kept: dict[int, Finding] = {}
    for group in by_index.values():
        group.sort(key=lambda f: rank[f.check_name])
        strongest, *weaker = group
        kept[id(strongest)] = strongest if not weaker else replace(
            strongest, evidence={**strongest.evidence, "also_reported_as": [f.check_name for f in weaker]})
    return [kept.get(id(f), f) for f in findings if f.check_name not in rank or id(f) in kept]


def _on_unread_table(finding: Finding, unread: frozenset[str]) -> bool:
    """Whether ``finding`` is about a table whose indexes and constraints the snapshot could not read (its
    object is the table, or a column list or index of it): what a check concludes from their absence
    may be false, so nothing is reported on such a table (the SKIPPED section names it and its holder)."""
    return any(finding.object == name or finding.object.startswith((name + " ", name + "("))
               for name in unread)
