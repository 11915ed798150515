"""Declarative automation for the whole graph, on by default.

Dagster's built-in `default_automation_condition_sensor` starts stopped; this one is ours, runs as soon as the
daemon does, and evaluates every asset's `automation_condition` (e.g. `audio_manifest` is eager: it rebuilds
after any batch of `raw_audio` lands).
"""

import dagster as dg

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
