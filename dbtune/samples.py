"""Where the shipped samples live: ``sample_configs/`` in a checkout, ``dbtune/sample_configs`` in a wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def samples_dir() -> Path:
    """The folder holding the sample configs and the guide's schema, data and workload SQL."""
    try:
        return Path(str(resources.files("dbtune.sample_configs")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "sample_configs"


def guide_file(name: str) -> Path:
    """A file of ``sample_configs/guide/`` (``schema.sql``, ``data.sql``, ``workload.sql``)."""
    return samples_dir() / "guide" / name
