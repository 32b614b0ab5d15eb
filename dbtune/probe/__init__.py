"""Measured targets of the guide (DESIGN.md, ``dbtune/probe/``): ``race`` (concurrent accepts of one
routing, the vendor win rate), ``load`` (throughput and percentiles, pgbench where it fits), ``recovery``
(crash and restart to the first query, and the estimate from the checkpoint settings), ``lag``
(replication lag on replicas), and the profile table that sets each measurement against a deployment
profile's target (:mod:`dbtune.probe.profile`)."""
