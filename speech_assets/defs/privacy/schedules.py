"""The daily retention sweep.

RUNNING by default: a retention policy that someone has to remember to switch on is not a policy, and the sweep is
safe to leave on — it removes only audio older than `max_age_days` (365 by default, $SPEECH_ASSETS_RETENTION_DAYS),
only from main (history keeps the blobs until garbage collection), and records every sweep in the audit trail.
"""

import dagster as dg

retention_job = dg.define_asset_job(
    "raw_audio_retention_job",
    selection=dg.AssetSelection.assets("raw_audio_retention"),
    description="Remove the raw audio of batches published longer ago than the retention period.",
)

retention_schedule = dg.ScheduleDefinition(
    name="raw_audio_retention_daily",
    job=retention_job,
    cron_schedule="0 3 * * *",  # 03:00 UTC, away from the working day's intake
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily raw-audio retention sweep (see raw_audio_retention).",
)
