"""Privacy: per-speaker erasure from `main`, raw-audio retention, and the PII redaction report (no Dagster here)."""
