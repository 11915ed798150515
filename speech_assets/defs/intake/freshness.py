"""Intake freshness: the UI says so when no new speech has been published for a while.

When batches stop arriving (or intake keeps failing), nothing downstream changes: the serving model stays, the
drift reports stop; this check turns that silence into a visible warning on `audio_manifest`.
SPEECH_ASSETS_INTAKE_FRESHNESS_HOURS sets the window (default 24 h).
"""

from datetime import timedelta

import dagster as dg

from speech_assets import settings

INTAKE_FRESHNESS_HOURS = settings.intake_freshness_hours()  # read when the definitions load


def build_intake_freshness_checks(hours: float):
    """A warning on `audio_manifest` when it has not been republished (no new batch) within `hours`."""
    return dg.build_last_update_freshness_checks(assets=["audio_manifest"], lower_bound_delta=timedelta(hours=hours))


intake_freshness_checks = build_intake_freshness_checks(INTAKE_FRESHNESS_HOURS)

intake_freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=intake_freshness_checks, name="intake_freshness_sensor", minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
