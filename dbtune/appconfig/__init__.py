"""What the application declares about its connections: readers for ``.env`` files, driver URLs,
``pgbouncer.ini``, docker-compose ``environment:``, HikariCP properties and a live PgBouncer's admin
console, and one typed model of pools, poolers and replicas (:mod:`dbtune.appconfig.model`)."""

from typing import TYPE_CHECKING

from dbtune.appconfig.model import AppConfig, Origin, Pool, Pooler, Replica, SessionFeature, Source, Target
from dbtune.lazy import lazy_attributes

if TYPE_CHECKING:
    from dbtune.appconfig.read import detect_format, read_app_config

# The readers (PyYAML, python-dotenv, psycopg's conninfo), only where an application config is read: not for
# the model, which every report carries
__getattr__ = lazy_attributes(__name__, {"detect_format": "dbtune.appconfig.read",
                                         "read_app_config": "dbtune.appconfig.read"})

__all__ = ["AppConfig", "Origin", "Pool", "Pooler", "Replica", "SessionFeature", "Source", "Target",
           "detect_format", "read_app_config"]
