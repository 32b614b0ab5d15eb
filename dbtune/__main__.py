"""``python -m dbtune``."""

from __future__ import annotations

from dbtune.cli.app import main

if __name__ == "__main__":
    main()
