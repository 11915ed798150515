"""The Dagster layer, one folder per domain (loaded by `speech_assets.definitions`)."""
