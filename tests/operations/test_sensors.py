"""The alert sensors on a real (temporary) Dagster instance, delivering to a loopback receiver."""

from __future__ import annotations

import json
import os

import dagster as dg

from speech_assets.defs.operations.resources import AlertSinkResource
from speech_assets.defs.operations.sensors import ops_alert_sensor, run_failure_alert_sensor
from speech_assets.defs.serving.resources import ServingResource
from tests.operations.conftest import LoopbackServer, metrics_text


@dg.op
def load_batch():
    return 3


@dg.op
def explode(n: int):
    raise ValueError(f"feature store unreachable after {n} tries")


@dg.job
def nightly_features():
    explode(load_batch())


def _alerts(tmp_path, receiver, **kw) -> AlertSinkResource:
    return AlertSinkResource(log_path=str(tmp_path / "alerts.jsonl"), webhook_url=f"{receiver.url}/hook",
                             retries=0, ui_url="http://127.0.0.1:3999", **kw)


def test_run_failure_sensor_alerts_for_a_real_failed_run(tmp_path, receiver):
    with dg.instance_for_test() as instance:
        result = nightly_features.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(), resources={"alerts": _alerts(tmp_path, receiver)},
        ).for_run_failure()
        run_failure_alert_sensor(context)

    (got,) = receiver.wait_for(1)
    body = json.loads(got["body"])
    run_id = result.dagster_run.run_id
    assert body["kind"] == "run_failure" and body["severity"] == "critical"
    assert body["dedupe_key"] == f"run_failure:{run_id}"
    assert body["details"]["job"] == "nightly_features" and body["details"]["steps"] == ["explode"]
    assert "feature store unreachable after 3 tries" in body["details"]["error"]
    assert body["details"]["run_url"] == f"http://127.0.0.1:3999/runs/{run_id}"
    assert "nightly_features failed at explode" in body["title"]
    (line,) = (json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines())
    assert line["dedupe_key"] == body["dedupe_key"]


def _drift_event(batch: str, score: float, fired: str, status: str = "judged") -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key="drift_report", partition=batch,
        metadata={"status": status, "drift_score": score, "drifted": score >= 1 and status == "judged",
                  "fired": fired, "utterances": 600, "reference_model": "1.0.0",
                  "dagster/uri": dg.MetadataValue.path(f"local://speech-assets/abc/monitoring/drift/{batch}.json")},
    )


def test_drift_alerts_once_per_drifted_batch_and_never_for_calm_ones(tmp_path, receiver):
    resources = {"alerts": _alerts(tmp_path, receiver), "serving": ServingResource(home=str(tmp_path / "serving"))}
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(_drift_event("day-1", 0.42, "none"))
        instance.report_runless_asset_event(_drift_event("day-2", 3.5, "accent_mix_js, unseen_accent_share"))
        # the model's own training batch: a high score there is not drift
        instance.report_runless_asset_event(_drift_event("day-0", 5.0, "snr_psi", status="in the reference"))
        context = dg.build_sensor_context(instance=instance, resources=resources)
        skip = ops_alert_sensor(context)
        assert "1 alert(s) sent" in skip.skip_message and "service not running" in skip.skip_message
        (got,) = receiver.wait_for(1)
        body = json.loads(got["body"])
        assert body["dedupe_key"] == "drift:day-2"
        assert body["details"]["fired"] == ["accent_mix_js", "unseen_accent_share"]
        assert body["details"]["link"].endswith("/monitoring/drift/day-2.json")

        # the cursor moves past what was judged: the same batches never alert again, a new drifted one does
        again = dg.build_sensor_context(instance=instance, resources=resources, cursor=context.cursor)
        assert "0 alert(s) sent" in ops_alert_sensor(again).skip_message
        instance.report_runless_asset_event(_drift_event("day-3", 1.2, "oov_rate_excess"))
        third = dg.build_sensor_context(instance=instance, resources=resources, cursor=again.cursor)
        ops_alert_sensor(third)
    assert [json.loads(r["body"])["dedupe_key"] for r in receiver.wait_for(2)] == ["drift:day-2", "drift:day-3"]


def test_slo_sensor_scrapes_the_running_service_breach_once_then_resolved(tmp_path, receiver):
    # The service's HTTP surface the sensor uses (/readyz, /metrics), at the address the deploy target records.
    service = LoopbackServer()
    serving_home = tmp_path / "serving"
    serving_home.mkdir()
    (serving_home / "deployment.json").write_text(json.dumps(
        {"pid": os.getpid(), "url": service.url, "port": service.server.server_address[1], "bento_tag": "asr:t"}))
    service.routes["/readyz"] = (200, b"ok")

    def serve(ok: int, errors: int):
        text = metrics_text({"1.1.0": {"ok": ok, "server_error": errors, "latencies": [0.1] * (ok + errors)}})
        service.routes["/metrics"] = (200, text.encode())

    resources = {"alerts": _alerts(tmp_path, receiver, max_error_rate=0.05, min_requests=20),
                 "serving": ServingResource(home=str(serving_home))}
    cursor = None
    messages = []
    try:
        with dg.instance_for_test() as instance:
            for ok, errors in ((50, 0), (80, 10), (120, 20), (320, 21)):
                serve(ok, errors)
                context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
                messages.append(ops_alert_sensor(context).skip_message)
                cursor = context.cursor
    finally:
        service.close()
    assert "first scrape" in messages[0] and "0 alert(s)" in messages[0]
    assert "1 alert(s)" in messages[1] and "0 alert(s)" in messages[2] and "1 alert(s)" in messages[3]
    bodies = [json.loads(r["body"]) for r in receiver.wait_for(2)]
    assert [(b["dedupe_key"], b["status"]) for b in bodies] == [
        ("slo:1.1.0:error_rate", "firing"), ("slo:1.1.0:error_rate", "resolved")]
    assert bodies[0]["details"]["requests"] == 40 and bodies[0]["details"]["errors"] == 10
    assert bodies[0]["details"]["service"] == service.url


def test_the_resource_takes_the_webhook_from_the_environment_and_never_shows_it(tmp_path, monkeypatch, receiver):
    from speech_assets.defs.operations.resources import alerts_from_env

    monkeypatch.setenv("SPEECH_ASSETS_HOME", str(tmp_path))
    monkeypatch.delenv("SPEECH_ASSETS_ALERT_LOG", raising=False)
    monkeypatch.delenv("SPEECH_ASSETS_ALERT_WEBHOOK", raising=False)
    assert alerts_from_env().webhook_url is None
    assert alerts_from_env().sink().log_path == tmp_path / "alerts" / "alerts.jsonl"

    monkeypatch.setenv("SPEECH_ASSETS_ALERT_WEBHOOK", f"{receiver.url}/hooks/tok-123secret")
    resource = alerts_from_env()
    assert isinstance(resource.webhook_url, dg.EnvVar)  # resolved at run time: the UI shows the variable's name
    bound = dg.build_init_resource_context(resources={"alerts": resource}).resources.alerts
    sink = bound.sink()
    assert "tok-123secret" not in repr(sink) and sink.webhook == f"{receiver.url}/…"
    assert sink.send(_drift_alert()).webhook == "sent"
    assert receiver.wait_for(1)[0]["path"] == "/hooks/tok-123secret"
    assert "tok-123secret" not in (tmp_path / "alerts" / "alerts.jsonl").read_text()


def _drift_alert():
    from speech_assets.operations.alerts import drift_alert

    return drift_alert({"batch_id": "day-9", "score": 1.5, "fired": ["snr_psi"]})
