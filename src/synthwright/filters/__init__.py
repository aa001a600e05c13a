"""Filters: keep or drop rows, always with a reason."""
