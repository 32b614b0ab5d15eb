"""Catalog SQL: one set-based query per kind of object, never one per object.

Each constant starts with a comment on what it returns. Version differences are explicit variants chosen
by ``server_version_num`` (supported: 130000 to 189999). Names are qualified with ``pg_catalog.``.
See https://www.postgresql.org/docs/current/catalogs.html and monitoring-stats.html.
"""

from __future__ import annotations

# Schemas that hold no user relations.
_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
"""

SERVER = """
-- The server, this session's identity, the statistics window of the current database, and the index
-- access methods it has (btree, hash, gin … and those extensions add).
SELECT pg_catalog.version() AS version,
       pg_catalog.current_setting('server_version_num')::int AS version_num,
       pg_catalog.current_database() AS database,
       current_user AS current_user,
       (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) AS is_superuser,
       ARRAY(SELECT b.rolname FROM pg_catalog.pg_roles b
             WHERE b.rolname IN ('pg_monitor', 'pg_read_all_stats', 'pg_read_all_settings',
                                 'pg_stat_scan_tables')
               AND pg_catalog.pg_has_role(current_user, b.oid, 'USAGE')) AS member_of,
       pg_catalog.now() AS now,
       pg_catalog.pg_postmaster_start_time() AS postmaster_start,
       (SELECT d.stats_reset FROM pg_catalog.pg_stat_database d
        WHERE d.datname = pg_catalog.current_database()) AS stats_reset,
       (SELECT coalesce(pg_catalog.json_object_agg(e.extname, e.extversion), '{}')
        FROM pg_catalog.pg_extension e) AS extensions,
       ARRAY(SELECT a.amname::text FROM pg_catalog.pg_am a WHERE a.amtype = 'i' ORDER BY 1) AS index_methods
"""

OTHER_RELATIONS = f"""
-- Relations outside system schemas that are not tables (views, foreign tables, sequences, composite
-- types): their schema, name and relkind, so that a config naming one is told what it names.
SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'f', 'S', 'c') AND {_USER_SCHEMAS}
"""

RELATIONS = f"""
-- Tables, partitioned tables and materialized views outside system schemas and extensions, with their
-- size in bytes (relpages × block_size, summed over the leaf partitions of a partitioned table, as of
-- the last VACUUM or ANALYZE: reading the file size would take a lock, and an audit must not wait
-- behind a migration), the planner's reltuples/relpages, their partition parent, and pg_stat_all_tables counters.
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       c.reltuples, c.relpages, c.relispartition AS is_partition,
       inh.inhparent AS parent_oid,
       -- A partitioned table has no storage (relpages -1 on PostgreSQL 14+): its size is its leaves'.
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(GREATEST(pc.relpages, 0)), 0)
                  FROM pg_catalog.pg_partition_tree(c.oid) t JOIN pg_catalog.pg_class pc ON pc.oid = t.relid
                  WHERE t.isleaf)
            ELSE GREATEST(c.relpages, 0) END::bigint
         * pg_catalog.current_setting('block_size')::bigint AS size_bytes,
       s.seq_scan, s.seq_tup_read, s.idx_scan, s.n_live_tup, s.n_tup_ins, s.n_tup_upd, s.n_tup_del
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_inherits inh ON inh.inhrelid = c.oid AND c.relispartition
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm') AND {_USER_SCHEMAS}
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
"""

COLUMNS = f"""
-- The live columns (attnum > 0, not dropped) of every relation RELATIONS returns.
SELECT a.attrelid, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, co.collname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped AND {_USER_SCHEMAS}
ORDER BY a.attrelid, a.attnum
"""

# The relations another session holds, or waits to hold, in ACCESS EXCLUSIVE: the one lock level that
# conflicts with the ACCESS SHARE lock pg_get_indexdef, pg_get_expr and pg_get_constraintdef take on a
# table to deparse its definitions (a request waiting in the lock queue blocks later requests as well).
# pg_locks is a view over shared memory: reading it takes no lock. The rows of the relations in it come
# back with ``locked`` true and nothing deparsed; the snapshot lists those tables as skipped.
_LOCKED = """
WITH locked AS (
    SELECT l.relation AS oid FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                        WHERE d.datname = pg_catalog.current_database()))
"""

LOCK_HOLDERS = """
-- For the relations given (oids), the sessions holding or awaiting ACCESS EXCLUSIVE on them: pid, whether
-- granted, the session's state, current query and since when (its transaction's start).
SELECT l.relation AS oid, l.pid, l.granted, a.state, a.query, a.xact_start
FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.relation = ANY (%(oids)s::oid[])
  AND l.pid <> pg_catalog.pg_backend_pid()
ORDER BY l.relation, NOT l.granted, l.pid
"""

_INDEXES = _LOCKED + f"""
-- Every index on a user relation: its key (indkey, operator classes, collations, indoption), INCLUDE
-- columns, expressions, predicate, validity, size in bytes (relpages × block_size, lock-free), scans since
-- stats_reset, the constraint it
-- backs, and the parent index it is attached to (for partitions).
SELECT i.indexrelid AS oid, n.nspname AS schema, ci.relname AS name, i.indrelid AS table_oid,
       am.amname AS method, ci.relkind = 'I' AS is_partitioned,
       i.indisunique, i.indisprimary, i.indisexclusion, i.indisvalid, i.indisready,
       {{nulls_not_distinct}} AS nulls_not_distinct,
       i.indkey::pg_catalog.int2[] AS key_attnums, i.indnkeyatts,
       lk.locked,
       CASE WHEN NOT lk.locked THEN ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
             FROM pg_catalog.generate_series(1, i.indnatts) AS k ORDER BY k) END AS columns,
       -- One index lookup per key column (a join made the planner hash all of pg_opclass per index).
       ARRAY(SELECT (SELECT oc.opcname FROM pg_catalog.pg_opclass oc WHERE oc.oid = u.opc)
             FROM pg_catalog.unnest(i.indclass::pg_catalog.oid[]) WITH ORDINALITY AS u(opc, ord)
             ORDER BY u.ord) AS opclasses,
       i.indclass::pg_catalog.oid[] AS opclass_oids,
       i.indcollation::pg_catalog.oid[] AS collation_oids,
       i.indoption::pg_catalog.int2[] AS options,
       CASE WHEN NOT lk.locked THEN pg_catalog.pg_get_expr(i.indexprs, i.indrelid) END AS expressions,
       CASE WHEN NOT lk.locked THEN pg_catalog.pg_get_expr(i.indpred, i.indrelid) END AS predicate,
       CASE WHEN NOT lk.locked THEN pg_catalog.pg_get_indexdef(i.indexrelid) END AS definition,
       -- A partitioned index has no storage either: its size is its leaf indexes'.
       CASE WHEN ci.relkind = 'I'
            THEN (SELECT coalesce(sum(GREATEST(pc.relpages, 0)), 0)
                  FROM pg_catalog.pg_partition_tree(ci.oid) t JOIN pg_catalog.pg_class pc ON pc.oid = t.relid
                  WHERE t.isleaf)
            ELSE GREATEST(ci.relpages, 0) END::bigint
         * pg_catalog.current_setting('block_size')::bigint AS size_bytes,
       s.idx_scan,
       con.conname AS constraint_name, con.contype AS constraint_type,
       inh.inhparent AS parent_index_oid
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
JOIN pg_catalog.pg_class ct ON ct.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = ci.relam
LEFT JOIN pg_catalog.pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
     AND con.contype IN ('p', 'u', 'x')
LEFT JOIN pg_catalog.pg_inherits inh ON inh.inhrelid = i.indexrelid
CROSS JOIN LATERAL (SELECT i.indrelid IN (SELECT oid FROM locked)
                           OR i.indexrelid IN (SELECT oid FROM locked) AS locked) lk
WHERE ct.relkind IN ('r', 'p', 'm') AND {_USER_SCHEMAS}
"""

INDEXES_V15 = _INDEXES.format(nulls_not_distinct="i.indnullsnotdistinct")
INDEXES_V13 = _INDEXES.format(nulls_not_distinct="false")

CONSTRAINTS = _LOCKED + f"""
-- Table constraints (primary key, unique, foreign key, check, exclusion) on user relations, with their
-- columns (attnums), referenced table and columns, validation state and parent (for partitions).
SELECT con.oid, n.nspname AS schema, con.conname AS name, con.contype AS type,
       con.conrelid AS table_oid, nullif(con.confrelid, 0) AS ref_table_oid,
       coalesce(con.conkey, '{{}}')::pg_catalog.int2[] AS columns,
       coalesce(con.confkey, '{{}}')::pg_catalog.int2[] AS ref_columns,
       con.convalidated AS validated, nullif(con.conparentid, 0) AS parent_oid,
       nullif(con.conindid, 0) AS index_oid,
       lk.locked,
       CASE WHEN NOT lk.locked THEN pg_catalog.pg_get_constraintdef(con.oid, true) END AS definition
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
CROSS JOIN LATERAL (SELECT con.conrelid IN (SELECT oid FROM locked) AS locked) lk
WHERE con.conrelid <> 0 AND con.contype <> 'n' AND {_USER_SCHEMAS}
"""

SETTINGS = """
-- Every server setting in its base unit: the value in this session, the value a new session of this user
-- starts with (reset_val, which includes ALTER ROLE/DATABASE settings), the built-in default, the source.
SELECT name, setting, reset_val, boot_val, unit, source FROM pg_catalog.pg_settings
"""

FILE_SETTINGS = """
-- Settings applied from postgresql.conf and postgresql.auto.conf (needs pg_read_all_settings).
SELECT name, setting FROM pg_catalog.pg_file_settings WHERE applied AND error IS NULL ORDER BY seqno
"""

INDEX_BUILDS = """
-- Indexes being built right now (CREATE INDEX [CONCURRENTLY], REINDEX), so they are not called invalid.
SELECT index_relid FROM pg_catalog.pg_stat_progress_create_index WHERE index_relid <> 0
"""

ROLE_SETTINGS = """
-- Per-role and per-database settings (ALTER ROLE/DATABASE ... SET) that apply to the current database.
SELECT r.rolname AS role, d.datname AS database, s.setconfig
FROM pg_catalog.pg_db_role_setting s
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
WHERE s.setdatabase = 0
   OR s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
"""

ROLES = """
-- Roles other than the predefined pg_* roles.
SELECT rolname, rolcanlogin, rolsuper, rolconnlimit FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_'
"""

PG_STAT_STATEMENTS_COUNT = """
-- How many statements pg_stat_statements holds (fails when the view is absent or unreadable).
SELECT count(*) FROM pg_stat_statements
"""

PG_STAT_STATEMENTS_LOCATION = """
-- The schema holding the pg_stat_statements view in this database, if the extension is created.
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

_DATABASE_STATS = """
-- The current database's cumulative counters since stats_reset: transactions committed and rolled back,
-- deadlocks detected, queries cancelled by recovery conflicts (a standby){sessions}.
SELECT d.xact_commit, d.xact_rollback, d.deadlocks, d.conflicts, d.stats_reset{columns}
FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database()
"""
DATABASE_STATS_V13 = _DATABASE_STATS.format(sessions="", columns="")
DATABASE_STATS_V14 = _DATABASE_STATS.format(
    sessions=(", and (14+) sessions opened and those\n-- ended by a client that went away, by a FATAL error "
              "or by an operator"),
    columns=", d.sessions, d.sessions_abandoned, d.sessions_fatal, d.sessions_killed")

ACTIVITY = """
-- The other client backends of the current database: role, application_name, state, wait event type,
-- the age of the open transaction and of the current state (seconds, at the snapshot's now()), and the
-- pids blocking each one (pg_blocking_pids). Without pg_read_all_stats other roles' state reads NULL.
SELECT a.pid, a.usename::text AS usename, a.application_name, a.state, a.wait_event_type,
       greatest(0, extract(epoch FROM pg_catalog.now() - a.xact_start))::float8 AS xact_age_s,
       greatest(0, extract(epoch FROM pg_catalog.now() - a.state_change))::float8 AS state_age_s,
       pg_catalog.pg_blocking_pids(a.pid) AS blocked_by
FROM pg_catalog.pg_stat_activity a
WHERE a.datname = pg_catalog.current_database() AND a.backend_type = 'client backend'
  AND a.pid <> pg_catalog.pg_backend_pid()
ORDER BY a.pid
"""


def database_stats_query(version_num: int) -> str:
    """The DATABASE_STATS variant: the session counters exist from PostgreSQL 14."""
    return DATABASE_STATS_V14 if version_num >= 140000 else DATABASE_STATS_V13


def indexes_query(version_num: int) -> str:
    """The INDEXES variant for a server: ``indnullsnotdistinct`` exists from PostgreSQL 15."""
    return INDEXES_V15 if version_num >= 150000 else INDEXES_V13
