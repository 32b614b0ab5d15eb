"""The catalog snapshot: set-based catalog queries and the typed model they fill."""
