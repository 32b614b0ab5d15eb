"""Measured targets of the guide: ``race`` (concurrent accepts of one routing, the vendor win rate)."""
