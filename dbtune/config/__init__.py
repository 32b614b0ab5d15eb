"""``dbtune.toml`` / ``[tool.dbtune]``: finding, parsing and validating the configuration."""

from dbtune.config.loader import find_config, load_config
from dbtune.config.model import Config

__all__ = ["Config", "find_config", "load_config"]
