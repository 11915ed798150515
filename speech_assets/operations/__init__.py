"""Operations: the dashboard a person reads and the alerts that reach them (no Dagster here)."""
