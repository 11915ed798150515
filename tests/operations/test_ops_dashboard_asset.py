"""The `ops_dashboard` asset: what it writes and says, and when automation runs it."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from speech_assets.defs.monitoring.assets import drift_report
from speech_assets.defs.operations.assets import ops_dashboard
from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.layout import DASHBOARD_PATH
from speech_assets.storage.local import LocalVersionStore
from tests.operations.conftest import LoopbackServer, metrics_text
from tests.operations.test_dashboard import _register, _report


def test_ops_dashboard_publishes_the_page_to_the_store_and_disk_with_key_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_ASSETS_HOME", str(tmp_path / "home"))
    store_res = VersionStoreResource(local_root=str(tmp_path / "store"))
    with LocalVersionStore(tmp_path / "store") as vs:
        vs.create_repository(store_res.repository, exist_ok=True)
        registry = ModelRegistry(vs, store_res.repository)
        _register(registry, b"w1", _report(0.11, 0.09))
        registry.set_stage("asr", "1.0.0", "production", "op", "first model")

    service = LoopbackServer()
    serving_home = tmp_path / "serving"
    serving_home.mkdir()
    (serving_home / "deployment.json").write_text(json.dumps({"pid": os.getpid(), "url": service.url}))
    service.routes["/readyz"] = (200, b"ok")
    service.routes["/metrics"] = (200, metrics_text(
        {"1.0.0": {"ok": 98, "server_error": 2, "latencies": [0.15] * 100}}).encode())
    try:
        result = dg.materialize([ops_dashboard], resources={"store": store_res,
                                                            "serving": ServingResource(home=str(serving_home))})
    finally:
        service.close()
    assert result.success
    md = {k: v.value for k, v in result.asset_materializations_for_node("ops_dashboard")[0].metadata.items()}
    assert md["production"] == "1.0.0" and md["production_wer"] == 0.11 and md["versions"] == 1
    assert md["service_reachable"] is True and md["service_requests"] == 100 and md["service_error_rate"] == 0.02
    assert "| Production | 1.0.0 |" in md["summary"]

    local = tmp_path / "home" / "reports" / "ops_dashboard.html"
    assert md["path"] == str(local)
    page = local.read_bytes()
    assert md["size_bytes"] == len(page)
    assert md["dagster/uri"] == f"local://{store_res.repository}/{md['commit_out']}/{DASHBOARD_PATH}"
    with LocalVersionStore(tmp_path / "store") as vs:
        assert vs.get_object(store_res.repository, "main", DASHBOARD_PATH) == page
        assert vs.get_object(store_res.repository, md["commit_out"], DASHBOARD_PATH) == page
    text = page.decode()
    assert "<td>1.0.0</td><td>live</td><td>100</td><td>2</td><td>2.00%</td>" in text
    assert "11.00% [10.0%, 12.0%]" in text
    assert md["stored"] is True

    # A refresh that only moves the live numbers rewrites the local file, not main (no commit per cron tick)
    again = dg.materialize([ops_dashboard], resources={"store": store_res,
                                                       "serving": ServingResource(home=str(serving_home))})
    md2 = {k: v.value for k, v in again.asset_materializations_for_node("ops_dashboard")[0].metadata.items()}
    assert md2["stored"] is False and md2["commit_out"] == md["commit_out"]
    assert "Service not reachable" in local.read_text()  # the loopback service is gone: the local page says so
    with LocalVersionStore(tmp_path / "store") as vs:
        assert vs.resolve(store_res.repository, "main") == md["commit_out"]
        ModelRegistry(vs, store_res.repository).set_stage("asr", "1.0.0", "archived", "op", "retired")
    third = dg.materialize([ops_dashboard], resources={"store": store_res,
                                                       "serving": ServingResource(home=str(serving_home))})
    md3 = {k: v.value for k, v in third.asset_materializations_for_node("ops_dashboard")[0].metadata.items()}
    assert md3["stored"] is True and md3["commit_out"] != md["commit_out"]  # the registry changed: stored again


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")  # raised inside dagster's own condition tester
def test_automation_runs_it_after_a_registration_and_on_the_clock_not_per_drift_batch():
    # resources are only bound, never opened: evaluating conditions runs nothing
    defs = dg.Definitions(assets=[ops_dashboard, registered_model, drift_report],
                          resources={"store": VersionStoreResource(), "serving": ServingResource()})
    start = datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("intake_batches", ["day-1"])
        first = dg.evaluate_automation_conditions(defs, instance, evaluation_time=start)
        assert first.get_num_requested(ops_dashboard.key) == 0

        instance.report_runless_asset_event(dg.AssetMaterialization("drift_report", partition="day-1"))
        r = dg.evaluate_automation_conditions(defs, instance, evaluation_time=start + timedelta(minutes=1),
                                              cursor=first.cursor)
        assert r.get_num_requested(ops_dashboard.key) == 0  # a drift batch alone waits for the clock

        instance.report_runless_asset_event(dg.AssetMaterialization("registered_model"))
        r = dg.evaluate_automation_conditions(defs, instance, evaluation_time=start + timedelta(minutes=2),
                                              cursor=r.cursor)
        assert r.get_num_requested(ops_dashboard.key) == 1

        quiet = dg.evaluate_automation_conditions(defs, instance, evaluation_time=start + timedelta(minutes=3),
                                                  cursor=r.cursor)
        assert quiet.get_num_requested(ops_dashboard.key) == 0
        tick = dg.evaluate_automation_conditions(defs, instance, evaluation_time=start + timedelta(minutes=15),
                                                 cursor=quiet.cursor)  # 00:15 passed
        assert tick.get_num_requested(ops_dashboard.key) == 1
