"""Features: log-mel extraction, feature sets in the store, per-batch summary statistics."""
