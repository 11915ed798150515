"""Training glue: artifact layout in the store (no Dagster)."""
