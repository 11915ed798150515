"""Monitoring: drift of incoming speech against the production model's training data, and the retrain policy."""
