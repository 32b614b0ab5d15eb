"""Schema changes rendered as SQL (and, later, Alembic revisions), the migration linter and the applier."""
