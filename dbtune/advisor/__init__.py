"""The index advisor: candidates from the workload's column usage, what-if costing (hypopg, trial builds,
or pg_stats), selection under a storage budget with write cost, and validation on the real server.

See :mod:`dbtune.advisor.model` for the types.
"""
