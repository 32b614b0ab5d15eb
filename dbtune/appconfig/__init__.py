"""What the application declares about its connections: readers for ``.env`` files, driver URLs,
``pgbouncer.ini``, docker-compose ``environment:``, HikariCP properties and a live PgBouncer's admin
console, and one typed model of pools, poolers and replicas (:mod:`dbtune.appconfig.model`)."""

from dbtune.appconfig.model import AppConfig, Origin, Pool, Pooler, Replica, SessionFeature, Source, Target
from dbtune.appconfig.read import detect_format, read_app_config

__all__ = ["AppConfig", "Origin", "Pool", "Pooler", "Replica", "SessionFeature", "Source", "Target",
           "detect_format", "read_app_config"]
