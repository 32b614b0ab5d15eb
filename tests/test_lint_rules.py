"""``dbtune migrate lint``: every migration rule (area ``migrations``) on a positive and a negative SQL case,
Alembic revisions (``op.execute`` inside and outside ``autocommit_block()``, operations mapped to SQL),
statements that do not parse, the session model (transactions, ``lock_timeout``), the merge with squawk,
and the command line. No database is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import assert_error

from dbtune.checks import DOC_SECTIONS, load_catalogue
from dbtune.errors import UsageError
from dbtune.migrate import squawk
from dbtune.migrate.lint import LintResult, lint_paths, lint_rules
from dbtune.migrate.squawk import find_squawk

GOLDEN = Path(__file__).parent / "golden"
CATALOGUE = load_catalogue()
RULES = {c.meta.id: c for c in lint_rules(CATALOGUE)}
SQUAWK = find_squawk()
needs_squawk = pytest.mark.skipif(SQUAWK is None, reason="squawk is not installed (pip install squawk-cli; "
                                                         "it is a dependency of dbtune)")


def lint(tmp_path: Path, text: str, name: str = "m.sql", **kwargs: object) -> LintResult:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    kwargs.setdefault("use_squawk", False)
    return lint_paths([path], **kwargs)  # type: ignore[arg-type]


def lines_of(result: LintResult, rule: str) -> list[int]:
    """Lines of dbtune's findings of ``rule`` (id or name)."""
    return [f.line for f in result.findings if f.source == "dbtune" and rule in (f.rule_id, f.rule)]


# --- every rule: positive and negative -----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rule: str
    sql: str
    lines: tuple[int, ...]  # () for a negative case

    def __str__(self) -> str:
        return f"{self.rule}-{'pos' if self.lines else 'neg'}-{zlib.crc32(self.sql.encode()) % 10000}"


CASES = [
    Case("MG001", """
        BEGIN;
        CREATE INDEX CONCURRENTLY orders_a_idx ON orders (a);
        DROP INDEX CONCURRENTLY orders_b_idx;
        REINDEX INDEX CONCURRENTLY orders_c_idx;
        COMMIT;
        """, (2, 3, 4)),
    Case("MG001", """
        CREATE INDEX CONCURRENTLY orders_a_idx ON orders (a);
        BEGIN;
        CREATE INDEX orders_b_idx ON orders (b);
        COMMIT;
        DROP INDEX CONCURRENTLY orders_b_idx;
        """, ()),
    Case("MG002", """
        CREATE INDEX orders_a_idx ON orders (a);
        CREATE UNIQUE INDEX orders_b_key ON public.orders (b);
        """, (1, 2)),
    Case("MG002", """
        CREATE TABLE widgets (id bigint, a int);
        CREATE INDEX widgets_a_idx ON public.widgets (a);
        CREATE INDEX CONCURRENTLY orders_a_idx ON orders (a);
        CREATE INDEX IF NOT EXISTS events_a_idx ON ONLY events (a);
        """, ()),
    Case("MG003", "DROP INDEX IF EXISTS orders_a_idx;\n", (1,)),
    Case("MG003", """
        DROP INDEX CONCURRENTLY IF EXISTS orders_a_idx;
        CREATE TABLE widgets (a int);
        CREATE INDEX widgets_a_idx ON widgets (a);
        DROP INDEX widgets_a_idx;
        """, ()),
    Case("MG004", """
        ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey
            FOREIGN KEY (customer_id) REFERENCES customers (id);
        ALTER TABLE orders ADD CHECK (total >= 0);
        """, (1, 3)),
    Case("MG004", """
        ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey
            FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
        ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
        CREATE TABLE lines (order_id bigint);
        ALTER TABLE lines ADD FOREIGN KEY (order_id) REFERENCES orders (id);
        """, ()),
    Case("MG005", """
        ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
        ALTER TABLE accounts ADD PRIMARY KEY (id);
        ALTER TABLE users ADD COLUMN handle text UNIQUE;
        """, (1, 2, 3)),
    Case("MG005", """
        CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
        ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
        CREATE TABLE widgets (id bigint);
        ALTER TABLE widgets ADD PRIMARY KEY (id);
        """, ()),
    Case("MG006", """
        SELECT 1;
        ALTER TABLE vendor_routing_responses
           ADD CONSTRAINT unique_routing_acceptance
           UNIQUE (routing_id)
           WHERE response = 'ACCEPTED';
        """, (2,)),
    Case("MG006", """
        CREATE UNIQUE INDEX CONCURRENTLY unique_routing_acceptance
            ON vendor_routing_responses (routing_id) WHERE response = 'ACCEPTED';
        ALTER TABLE t ADD CONSTRAINT u UNIQUE (a) WHER b;
        """, ()),
    Case("MG007", """
        ALTER TABLE orders ADD COLUMN note text;
        CREATE INDEX orders_a_idx ON orders (a);
        SET lock_timeout = '2s';
        ALTER TABLE orders ADD COLUMN other text;
        RESET lock_timeout;
        DROP TABLE old_orders;
        """, (1, 6)),
    Case("MG007", """
        CREATE TABLE widgets (id bigint);
        ALTER TABLE widgets ADD COLUMN a int;
        CREATE INDEX CONCURRENTLY orders_a_idx ON orders (a);
        ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fkey;
        SET lock_timeout TO '3s';
        ALTER TABLE orders ADD COLUMN note text;
        BEGIN;
        SET LOCAL lock_timeout = '1s';
        ALTER TABLE orders DROP COLUMN note;
        COMMIT;
        """, ()),
    Case("MG008", """
        ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
        """, (1,)),
    Case("MG008", """
        ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null CHECK (customer_id IS NOT NULL) NOT VALID;
        ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;
        ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
        CREATE TABLE widgets (a int);
        ALTER TABLE widgets ALTER COLUMN a SET NOT NULL;
        """, ()),
    Case("MG009", """
        SELECT 1;
        ALTER TABLE orders
            ADD COLUMN note text DEFALT '';
        SELECT 2;
        """, (3,)),
    Case("MG009", "SELECT 1;\n\\set ON_ERROR_STOP on\nSELECT 2;\n", ()),
    Case("MG010", "ALTER TABLE events ALTER COLUMN id TYPE bigint;\n", (1,)),
    Case("MG010", """
        CREATE TABLE widgets (id int);
        ALTER TABLE widgets ALTER COLUMN id TYPE bigint;
        ALTER TABLE events ALTER COLUMN note SET DEFAULT '';
        """, ()),
    Case("MG011", """
        ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
        ALTER TABLE orders ADD COLUMN seq bigserial;
        ALTER TABLE orders ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
        ALTER TABLE orders ADD COLUMN r float8 DEFAULT round(random() * 10);
        """, (1, 2, 3, 4)),
    Case("MG011", """
        ALTER TABLE orders ADD COLUMN created_at timestamptz DEFAULT now();
        ALTER TABLE orders ADD COLUMN status text DEFAULT 'new' NOT NULL;
        CREATE TABLE widgets (id int);
        ALTER TABLE widgets ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
        """, ()),
    Case("MG012", """
        VACUUM FULL orders;
        VACUUM (FULL, ANALYZE) orders;
        CLUSTER orders USING orders_created_at_idx;
        """, (1, 2, 3)),
    Case("MG012", """
        VACUUM orders;
        VACUUM (FULL false) orders;
        CREATE TABLE widgets (id int);
        VACUUM FULL widgets;
        """, ()),
    Case("MG013", """
        BEGIN;
        VACUUM orders;
        ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;
        COMMIT;
        """, (2, 3)),
    Case("MG013", """
        VACUUM orders;
        BEGIN;
        ANALYZE orders;
        COMMIT;
        ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;
        """, ()),
    Case("MG014", """
        BEGIN;
        ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey
            FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
        ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fkey;
        COMMIT;
        """, (4,)),
    Case("MG014", """
        BEGIN;
        ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey
            FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
        COMMIT;
        ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fkey;
        """, ()),
    Case("MG015", """
        REINDEX INDEX orders_a_idx;
        REINDEX TABLE orders;
        """, (1, 2)),
    Case("MG015", """
        REINDEX INDEX CONCURRENTLY orders_a_idx;
        REINDEX (CONCURRENTLY) TABLE orders;
        CREATE TABLE widgets (id int);
        REINDEX TABLE widgets;
        """, ()),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_case(case: Case, tmp_path: Path) -> None:
    result = lint(tmp_path, case.sql)
    assert lines_of(result, case.rule) == list(case.lines), [f.to_json() for f in result.findings]
    for f in result.findings:
        if f.rule_id == case.rule:
            assert f.severity is RULES[case.rule].meta.severity
            assert f.message and f.statement


def test_every_rule_has_positive_and_negative_cases() -> None:
    positive = {c.rule for c in CASES if c.lines}
    negative = {c.rule for c in CASES if not c.lines}
    assert set(RULES) == positive == negative, (set(RULES) - positive, set(RULES) - negative)
    assert len(RULES) >= 15


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_documentation(rule_id: str) -> None:
    check = RULES[rule_id]
    assert check.path.parent.name == "migrations" and check.meta.area == "migrations"
    assert [s for s in DOC_SECTIONS if not check.doc.get(s)] == []
    assert "https://www.postgresql.org/docs/" in check.doc["References"]
    assert "squawk" in check.doc["What it does"], "say where dbtune and squawk overlap (or that they do not)"


# --- what the findings say and fix ---------------------------------------------------------------


def test_finding_object_is_file_and_line(tmp_path: Path) -> None:
    result = lint(tmp_path, "SELECT 1;\nCREATE INDEX orders_a_idx ON orders (a);\n", name="0042_orders.sql")
    [f] = [f for f in result.findings if f.rule_id == "MG002"]
    assert (f.file, f.line, f.location) == (str(tmp_path / "0042_orders.sql"), 2, f"{tmp_path}/0042_orders.sql:2")
    assert f.statement == "CREATE INDEX orders_a_idx ON orders (a)"
    assert [c.up for c in f.changes] == ["CREATE INDEX CONCURRENTLY orders_a_idx\n  ON orders (a);"]
    assert not f.changes[0].transactional


def test_partial_unique_constraint_fix_is_a_partial_unique_index(tmp_path: Path) -> None:
    result = lint(tmp_path, """
        ALTER TABLE vendor_routing_responses
           ADD CONSTRAINT unique_routing_acceptance
           UNIQUE (routing_id)
           WHERE response = 'ACCEPTED';
        """)
    [f] = result.findings
    assert (f.rule, f.severity.value, f.line) == ("partial-unique-constraint", "error", 1)
    assert "no partial UNIQUE constraint" in f.message
    assert [c.up for c in f.changes] == [
        "CREATE UNIQUE INDEX CONCURRENTLY unique_routing_acceptance\n"
        "  ON vendor_routing_responses (routing_id)\n"
        "  WHERE response = 'ACCEPTED';"]


def test_partial_unique_constraint_in_create_table_is_a_plain_index(tmp_path: Path) -> None:
    result = lint(tmp_path, "CREATE TABLE t (a int, b bool, UNIQUE (a) WHERE (b));\n")
    [f] = result.findings
    assert f.rule == "partial-unique-constraint"
    assert f.changes[0].up == "CREATE UNIQUE INDEX t_a_key\n  ON t (a)\n  WHERE b;"
    assert "take it out of CREATE TABLE" in f.message


def test_syntax_error_reported_with_its_line_and_the_rest_still_linted(tmp_path: Path) -> None:
    result = lint(tmp_path, """
        CREATE INDEX orders_a_idx ON orders (a);
        ALTER TABLE orders
            ADD COLUMN note text DEFALT '';
        CREATE INDEX orders_b_idx ON orders (b);
        """)
    by_rule = {(f.rule, f.line) for f in result.findings}
    assert ("statement-syntax-error", 3) in by_rule
    assert {("index-created-without-concurrently", 1), ("index-created-without-concurrently", 4)} <= by_rule
    [err] = [f for f in result.findings if f.rule == "statement-syntax-error"]
    assert 'syntax error at or near "DEFALT"' in err.message


def test_unterminated_string_isassert_error(tmp_path: Path) -> None:
    result = lint(tmp_path, "SELECT 1;\nSELECT 'abc;\n")
    assert [(f.rule, f.line) for f in result.findings] == [("statement-syntax-error", 2)]
    assert "unterminated quoted string" in result.findings[0].message


def test_set_not_null_recipe_needs_validation(tmp_path: Path) -> None:
    result = lint(tmp_path, """
        ALTER TABLE orders ADD CONSTRAINT c CHECK (customer_id IS NOT NULL) NOT VALID;
        ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
        """)
    assert lines_of(result, "MG008") == [2]


def test_lock_timeout_reported_once_per_run(tmp_path: Path) -> None:
    result = lint(tmp_path, """
        ALTER TABLE orders ADD COLUMN a int;
        ALTER TABLE orders ADD COLUMN b int;
        ALTER TABLE orders ADD COLUMN c int;
        """)
    [f] = [f for f in result.findings if f.rule_id == "MG007"]
    assert f.line == 1 and "lines 2, 3" in f.message
    assert [c.up for c in f.changes] == ["SET lock_timeout = '5s';"]


def test_lock_timeout_scopes(tmp_path: Path) -> None:
    """SET LOCAL counts only inside its transaction block; outside one it does nothing. A zero value is
    no timeout; set_config() counts like SET."""
    result = lint(tmp_path, """
        SET LOCAL lock_timeout = '1s';
        ALTER TABLE a ADD COLUMN x int;
        BEGIN;
        SET LOCAL lock_timeout = '1s';
        ALTER TABLE b ADD COLUMN x int;
        COMMIT;
        ALTER TABLE c ADD COLUMN x int;
        SELECT set_config('lock_timeout', '2s', false);
        ALTER TABLE d ADD COLUMN x int;
        SET lock_timeout = 0;
        ALTER TABLE e ADD COLUMN x int;
        """)
    assert lines_of(result, "MG007") == [2, 7, 11]
    assert "SET LOCAL" not in result.findings[0].changes[0].up


def test_lock_timeout_option_and_severity_from_config(tmp_path: Path) -> None:
    from dbtune.config.loader import parse_config

    config = parse_config({"checks": {"lock-timeout-missing": {"suggested_timeout": "1s", "severity": "info"}}})
    result = lint(tmp_path, "ALTER TABLE orders ADD COLUMN a int;\n", config=config)
    [f] = [f for f in result.findings if f.rule_id == "MG007"]
    assert f.severity.value == "info" and f.changes[0].up == "SET lock_timeout = '1s';"


def test_ignore_rule(tmp_path: Path) -> None:
    result = lint(tmp_path, "ALTER TABLE orders ADD COLUMN a int;\n", ignore=["lock-timeout-missing"])
    assert result.findings == [] and "MG007" not in result.rules_run
    with pytest.raises(UsageError, match="duplicate-index"):
        lint(tmp_path, "SELECT 1;\n", ignore=["duplicate-index"])


# --- Alembic revisions ---------------------------------------------------------------------------

REVISION = '''
"""add order indexes

Revision ID: 0042
"""
import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"

FK = "ALTER TABLE orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id)"


def upgrade():
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table("widgets", sa.Column("id", sa.BigInteger(), primary_key=True))
    op.create_index("widgets_id_idx", "widgets", ["id"])
    op.execute("CREATE INDEX CONCURRENTLY orders_a_idx ON orders (a)")
    op.execute(sa.text("""
        CREATE INDEX orders_b_idx ON orders (b);
        CREATE INDEX CONCURRENTLY orders_c_idx ON orders (c)
    """))
    op.create_index("orders_d_idx", "orders", ["d"], unique=True)
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY orders_e_idx ON orders (e)")
        op.create_index("orders_f_idx", "orders", ["f"], postgresql_concurrently=True)
        op.execute("ALTER TABLE orders ADD COLUMN g int")
    op.execute(FK)
    op.create_foreign_key("orders_h_fkey", "orders", "customers", ["h"], ["id"], postgresql_not_valid=True)
    op.create_unique_constraint("orders_x_key", "orders", ["x"], postgresql_where=sa.text("y > 0"))
    op.alter_column("orders", "z", nullable=False)
    op.execute(f"SELECT {1}")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("u", sa.Uuid(), server_default=sa.text("gen_random_uuid()")))


def downgrade():
    op.drop_index("orders_a_idx", table_name="orders")
'''


def test_alembic_revision(tmp_path: Path) -> None:
    result = lint(tmp_path, REVISION, name="0042_orders.py")
    found = {(f.rule_id, f.line) for f in result.findings}
    assert found == {
        ("MG001", 18),  # op.execute CONCURRENTLY in Alembic's transaction
        ("MG002", 20),  # line inside the triple-quoted sa.text()
        ("MG001", 21),  # the second statement of the same string, in the transaction
        ("MG002", 23),  # op.create_index without postgresql_concurrently
        ("MG007", 27),  # autocommit: the SET LOCAL of Alembic's first transaction no longer applies
        ("MG004", 28),  # a module-level constant
        ("MG006", 30),  # op.create_unique_constraint(postgresql_where=…)
        ("MG008", 31),  # op.alter_column(nullable=False)
        ("MG011", 34),  # batch_op.add_column with a volatile server_default
    }, sorted(found)
    mg007 = next(f for f in result.findings if f.rule_id == "MG007")
    assert "lines 28, 29, 31, 34" in mg007.message
    assert any("line 32" in n and "built at run time" in n for n in result.notes)
    mg001 = next(f for f in result.findings if f.rule_id == "MG001")
    assert "Alembic's migration transaction" in mg001.message and "autocommit_block" in mg001.message
    mg002 = next(f for f in result.findings if f.rule_id == "MG002" and f.line == 23)
    assert "postgresql_concurrently=True" in mg002.message
    assert mg002.statement == "CREATE UNIQUE INDEX orders_d_idx ON orders (d)"


def test_alembic_downgrade_only_with_flag(tmp_path: Path) -> None:
    assert lines_of(lint(tmp_path, REVISION, name="r.py"), "MG003") == []
    result = lint(tmp_path, REVISION, name="r.py", include_downgrade=True)
    [f] = [f for f in result.findings if f.rule_id == "MG003"]
    assert f.line == 38 and f.message.startswith("downgrade(): DROP INDEX orders_a_idx")


def test_alembic_inside_and_outside_autocommit_block(tmp_path: Path) -> None:
    result = lint(tmp_path, '''
        from alembic import op


        def upgrade():
            with op.get_context().autocommit_block():
                op.execute("CREATE INDEX CONCURRENTLY a_idx ON t (a)")
            op.execute("CREATE INDEX CONCURRENTLY b_idx ON t (b)")
            with op.get_context().autocommit_block():
                op.execute("CREATE INDEX CONCURRENTLY c_idx ON t (c); CREATE INDEX CONCURRENTLY d_idx ON t (d)")
            op.create_index("e_idx", "t", ["e"], postgresql_concurrently=True)
            op.drop_index("f_idx", postgresql_concurrently=True)
        ''', name="r.py")
    mg001 = [(f.line, f.message) for f in result.findings if f.rule_id == "MG001"]
    assert [line for line, _ in mg001] == [7, 9, 9, 10, 11]
    assert "implicit transaction block" in mg001[1][1] and "own op.execute() call" in mg001[1][1]


def test_dbtune_step_helpers_run_in_autocommit_under_lock_timeout(tmp_path: Path) -> None:
    """The revisions ``dbtune migrate generate`` writes call dbtune.migrate.runtime's step helpers."""
    result = lint(tmp_path, '''
        from alembic import op
        from dbtune.migrate.runtime import build_index, run_step


        def upgrade() -> None:
            build_index(op, "public.orders_a_idx", """
            CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_a_idx ON public.orders (a);
            """)
            run_step(op, "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_b_fkey")
            run_step(op, "ALTER TABLE public.orders ADD COLUMN c int")
            run_step(op, "CREATE INDEX orders_d_idx ON public.orders (d)")
        ''', name="r.py")
    assert [(f.rule_id, f.line) for f in result.findings] == [("MG002", 11)]


def test_alembic_python_syntax_error(tmp_path: Path) -> None:
    result = lint(tmp_path, "def upgrade(:\n    pass\n", name="r.py")
    [f] = result.findings
    assert (f.rule, f.line) == ("statement-syntax-error", 1) and "not valid Python" in f.message


def test_python_file_without_upgrade_is_noted(tmp_path: Path) -> None:
    result = lint(tmp_path, "x = 1\n", name="env.py")
    assert result.findings == [] and any("no upgrade() function" in n for n in result.notes)


# --- squawk --------------------------------------------------------------------------------------


@needs_squawk
def test_squawk_findings_are_merged(tmp_path: Path) -> None:
    result = lint(tmp_path, """
        -- a comment, so lines are not statement numbers
        CREATE INDEX orders_a_idx ON orders (a);
        ALTER TABLE orders ADD COLUMN note text DEFALT '';
        ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
        """, use_squawk=True)
    assert result.squawk.ran and result.squawk.version
    mg002 = next(f for f in result.findings if f.rule_id == "MG002")
    assert mg002.line == 2 and "require-concurrent-index-creation" in mg002.also
    mg008 = next(f for f in result.findings if f.rule_id == "MG008")
    assert mg008.line == 4 and "adding-not-nullable-field" in mg008.also
    own = [f for f in result.findings if f.source == "squawk"]
    assert own and all(f.rule_id is None and f.rule and f.line in (2, 4) for f in own)
    # The statement that does not parse is dbtune's alone: squawk lints the rest of the file.
    assert not any(f.rule == "syntax-error" for f in own)
    assert "require-concurrent-index-creation" not in {f.rule for f in own}


@needs_squawk
def test_squawk_on_alembic_maps_lines_back(tmp_path: Path) -> None:
    result = lint(tmp_path, '''
        from alembic import op


        def upgrade():
            op.execute("""
                SELECT 1;
                CREATE INDEX orders_a_idx ON orders (a)
            """)
            op.execute("ALTER TABLE orders ALTER COLUMN b SET NOT NULL")
        ''', name="r.py", use_squawk=True)
    assert result.squawk.ran
    mg002 = next(f for f in result.findings if f.rule_id == "MG002")
    assert mg002.line == 7 and "require-concurrent-index-creation" in mg002.also
    mg008 = next(f for f in result.findings if f.rule_id == "MG008")
    assert mg008.line == 9 and "adding-not-nullable-field" in mg008.also
    assert {f.line for f in result.findings if f.source == "squawk"} <= {6, 7, 9}


def test_without_squawk_on_path_lint_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(squawk, "_script_dirs", lambda: [])  # not beside this interpreter either
    result = lint(tmp_path, "CREATE INDEX orders_a_idx ON orders (a);\n", use_squawk=True)
    assert not result.squawk.ran and result.squawk.detail == "squawk is not installed; pip install squawk-cli"
    assert lines_of(result, "MG002") == [1]


def test_squawk_failure_is_reported_and_lint_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "squawk"
    fake.write_text("#!/bin/sh\necho 'squawk 0.0.0'\n[ \"$1\" = --version ] && exit 0\necho boom >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = lint(tmp_path, "CREATE INDEX orders_a_idx ON orders (a);\n", use_squawk=True)
    assert not result.squawk.ran and result.squawk.detail == "failed: squawk exited with 3: boom"
    assert lines_of(result, "MG002") == [1]


def test_no_squawk(tmp_path: Path) -> None:
    result = lint(tmp_path, "SELECT 1;\n", use_squawk=False)
    assert not result.squawk.ran and result.squawk.detail == "--no-squawk"


# --- the command line ----------------------------------------------------------------------------


def test_cli_missing_file_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ok.sql").write_text("SELECT 1;\n")
    assert_error(cli("migrate", "lint", "ok.sql", "missing.sql"), 2, "missing.sql", "no such file")


def test_cli_missing_file_exits_2_as_a_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTUNE_"))}
    proc = subprocess.run([sys.executable, "-m", "dbtune", "migrate", "lint", "nope.sql"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", "error: nope.sql: no such file\n")


def test_cli_binary_file_and_directory_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "blob.sql").write_bytes(b"\x00\x01\x02SELECT")
    assert_error(cli("migrate", "lint", "blob.sql"), 2, "blob.sql", "binary")
    (tmp_path / "versions").mkdir()
    assert_error(cli("migrate", "lint", "versions"), 2, "versions", "directory")


def test_cli_bad_options_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "m.sql").write_text("SELECT 1;\n")
    assert_error(cli("migrate", "lint", "m.sql", "--fail-on", "sometimes"), 2, "--fail-on")
    assert_error(cli("migrate", "lint", "m.sql", "--ignore", "nope"), 2, "nope")
    assert_error(cli("migrate", "lint"), 2)


def test_cli_exit_codes_follow_fail_on(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "warn.sql").write_text("SET lock_timeout = '1s';\nCREATE INDEX a_idx ON t (a);\n")
    (tmp_path / "clean.sql").write_text("SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY a_idx ON t (a);\n")
    assert cli("migrate", "lint", "--no-squawk", "warn.sql").code == 1  # default: warning
    assert cli("migrate", "lint", "--no-squawk", "--fail-on", "error", "warn.sql").code == 0
    assert cli("migrate", "lint", "--no-squawk", "--fail-on", "never", "warn.sql").code == 0
    assert cli("migrate", "lint", "--no-squawk", "clean.sql").code == 0


def test_cli_text_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "m.sql").write_text("SET lock_timeout = '1s';\nCREATE INDEX a_idx ON t (a);\n")
    run = cli("migrate", "lint", "--no-squawk", "m.sql")
    assert run.code == 1 and run.err == ""
    assert run.out == (GOLDEN / "migrate_lint.txt").read_text()


def test_cli_json_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "m.sql").write_text("CREATE INDEX a_idx ON t (a);\n")
    run = cli("migrate", "lint", "m.sql", "--format", "json")
    assert run.code == 1 and run.err == ""
    report = json.loads(run.out)
    assert report["lint_version"] == 1 and report["files"] == ["m.sql"]
    assert report["squawk"]["ran"] is (SQUAWK is not None)
    [mg002] = [f for f in report["findings"] if f["rule_id"] == "MG002"]
    assert {k: mg002[k] for k in ("file", "line", "rule", "severity", "source")} == {
        "file": "m.sql", "line": 1, "rule": "index-created-without-concurrently", "severity": "warning",
        "source": "dbtune"}
    assert mg002["fix"][0]["transactional"] is False
    if SQUAWK is not None:
        assert "require-concurrent-index-creation" in mg002["also_squawk"]
        assert any(f["source"] == "squawk" and f["rule_id"] is None for f in report["findings"])


def test_cli_checks_show_lint_rule(cli) -> None:  # type: ignore[no-untyped-def]
    run = cli("checks", "show", "partial-unique-constraint")
    assert run.code == 0 and run.out.startswith("MG006 partial-unique-constraint\n")
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in run.out
