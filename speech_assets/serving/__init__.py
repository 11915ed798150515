"""Serving: request routing between champion and challenger, canary decisions, live metrics (no Dagster here)."""
