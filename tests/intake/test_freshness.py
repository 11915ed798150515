"""The intake freshness check: a fresh manifest passes, a stale one warns (the serving model is untouched)."""

from __future__ import annotations

import time

import dagster as dg

from speech_assets.defs.intake.freshness import build_intake_freshness_checks, intake_freshness_checks


def _evaluate(checks, instance) -> dg.AssetCheckEvaluation:
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*checks))
    defs = dg.Definitions(assets=[dg.AssetSpec("audio_manifest")], asset_checks=checks, jobs=[job])
    result = defs.resolve_job_def("freshness").execute_in_process(instance=instance, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_the_manifest_is_fresh_after_a_publish_and_stale_when_intake_stops():
    assert [k.asset_key.to_user_string() for c in intake_freshness_checks for k in c.check_keys] == ["audio_manifest"]
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("audio_manifest"))
        assert _evaluate(build_intake_freshness_checks(hours=1), instance).passed
        time.sleep(2.5)  # no batch for longer than the (here, 2-second) window
        stale = _evaluate(build_intake_freshness_checks(hours=2 / 3600), instance)
        assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
