"""``dbtune probe``: the guide's targets, measured. The group; each probe's commands live in their own
module and register themselves on :data:`probe_app`."""

from __future__ import annotations

import typer

probe_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                        help="Measure the guide's targets: load, crash recovery, replication lag.")
