"""The alert sink against a loopback receiver, the drift alert and the SLO breach/dedupe/resolve cycle."""

from __future__ import annotations

import json
import time

import pytest

from speech_assets.monitoring.drift import DriftReport, Signal
from speech_assets.operations.alerts import (
    SLO,
    Alert,
    AlertSink,
    SLOState,
    counters_from_json,
    counters_to_json,
    drift_alert,
    evaluate_slo,
    redact_url,
)
from speech_assets.serving.metrics import parse
from tests.operations.conftest import LoopbackServer, closed_port, metrics_text


def _alert(key: str = "drift:day-3") -> Alert:
    return Alert("drift", "warning", "drift in batch day-3", {"score": 2.5, "fired": ["snr_psi"]}, key)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_webhook_receives_the_alert_json_and_the_log_gets_the_line(tmp_path, receiver):
    log = tmp_path / "alerts" / "alerts.jsonl"
    sink = AlertSink(log, f"{receiver.url}/hook", timeout_s=5, retries=0)
    delivery = sink.send(_alert())
    assert delivery.ok and delivery.webhook == "sent" and delivery.status_code == 200 and delivery.logged

    (got,) = receiver.wait_for(1)
    assert got["path"] == "/hook" and got["headers"]["Content-Type"] == "application/json"
    body = json.loads(got["body"])
    assert body["kind"] == "drift" and body["dedupe_key"] == "drift:day-3" and body["status"] == "firing"
    assert body["details"] == {"score": 2.5, "fired": ["snr_psi"]}
    assert body["text"] == "[WARNING] drift in batch day-3"
    (line,) = _lines(log)
    assert line["type"] == "alert" and line["title"] == "drift in batch day-3" and line["ts"] == body["ts"]


def test_a_dead_webhook_does_not_raise_the_log_still_records_and_the_token_is_never_shown(tmp_path):
    log = tmp_path / "alerts.jsonl"
    secret = "T000/B000/s3cr3t-token"
    url = f"http://127.0.0.1:{closed_port()}/services/{secret}?key=abc123"
    sink = AlertSink(log, url, timeout_s=2, retries=2, backoff_s=0.01)
    t0 = time.monotonic()
    delivery = sink.send(_alert())
    assert delivery.webhook == "failed" and delivery.attempts == 3 and delivery.logged and not delivery.ok
    assert "Connection refused" in delivery.error or "refused" in delivery.error.lower()
    assert time.monotonic() - t0 < 5
    lines = _lines(log)
    assert [x["type"] for x in lines] == ["alert", "delivery_failed"]
    assert lines[1]["dedupe_key"] == "drift:day-3" and lines[1]["attempts"] == 3
    text = log.read_text() + delivery.error + repr(sink) + sink.webhook
    assert "s3cr3t" not in text and "abc123" not in text
    assert lines[1]["webhook"] == redact_url(url) == f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}/…"
    # while the webhook is down, the next alert gets one attempt, not the full retry ladder
    assert sink.send(_alert("drift:day-4")).attempts == 1


def test_a_rejecting_webhook_is_not_retried(tmp_path):
    server = LoopbackServer(post_status=400)
    try:
        sink = AlertSink(tmp_path / "a.jsonl", server.url + "/x", timeout_s=2, retries=3, backoff_s=0.01)
        delivery = sink.send(_alert())
    finally:
        server.close()
    assert delivery.webhook == "failed" and delivery.status_code == 400 and delivery.attempts == 1
    assert len(server.received) == 1


def test_a_sink_needs_somewhere_to_send():
    with pytest.raises(ValueError, match="log file, a webhook URL"):
        AlertSink(None, None)
    with pytest.raises(ValueError, match="http"):
        AlertSink(None, "file:///etc/passwd")


def test_drift_alert_fires_for_a_drifted_report_and_not_for_a_calm_one():
    drifted = DriftReport("day-5", 1200, [Signal("accent_mix_js", 0.9, 0.2, "drift", 1200),
                                          Signal("snr_psi", 0.1, 0.25, "ok", 1200)])
    calm = DriftReport("day-4", 300, [Signal("accent_mix_js", 0.05, 0.2, "ok", 300),
                                      Signal("snr_psi", 0.2, 0.25, "ok", 300)])
    alert = drift_alert({**drifted.to_dict(), "reference_model": "1.0.0"}, threshold=1.0, link="local://r/c/x")
    assert alert is not None and alert.kind == "drift" and alert.dedupe_key == "drift:day-5"
    assert alert.severity == "critical"  # 4.5x its threshold
    assert alert.details["fired"] == ["accent_mix_js"] and alert.details["score"] == pytest.approx(4.5)
    assert "accent_mix_js" in alert.title and alert.details["link"] == "local://r/c/x"
    assert drift_alert(calm.to_dict(), threshold=1.0) is None  # score 0.8
    assert drift_alert(calm.to_dict(), threshold=0.5) is not None  # a stricter threshold catches it
    # a batch the reference model trained on cannot drift from itself
    assert drift_alert({**drifted.to_dict(), "in_reference": True}) is None


def _scrape(ok: int, errors: int, slow: int = 0, version: str = "1.0.0"):
    latencies = [0.1] * (ok + errors - slow) + [4.0] * slow
    return parse(metrics_text({version: {"ok": ok, "server_error": errors, "latencies": latencies}}))


def test_slo_breach_alerts_once_repeats_nothing_and_recovery_resolves():
    slo = SLO(max_error_rate=0.05, max_p95_latency_s=2.0, min_requests=20)
    s0, s1, s2, s3 = _scrape(100, 0), _scrape(150, 20), _scrape(200, 40), _scrape(400, 41)

    alerts, state = evaluate_slo(s0, s1, slo, SLOState())  # 20 errors in 70 requests
    assert [(a.kind, a.status, a.dedupe_key) for a in alerts] == [("slo", "firing", "slo:1.0.0:error_rate")]
    assert alerts[0].details["value"] == pytest.approx(20 / 70) and alerts[0].details["requests"] == 70

    # the state survives the sensor cursor (JSON), and so does the previous scrape
    state = SLOState.from_dict(json.loads(json.dumps(state.to_dict())))
    s1 = counters_from_json(json.loads(json.dumps(counters_to_json(s1))))
    alerts, state = evaluate_slo(s1, s2, slo, state)  # still breaching: no second alert
    assert alerts == []
    alerts, state = evaluate_slo(s2, s3, slo, state)  # 1 error in 201: back within the objective
    assert [(a.status, a.dedupe_key, a.severity) for a in alerts] == [("resolved", "slo:1.0.0:error_rate", "info")]
    assert state.breaching == {}


def test_slo_latency_breach_too_few_requests_and_a_version_that_left():
    slo = SLO(max_error_rate=0.05, max_p95_latency_s=2.0, min_requests=20)
    base = _scrape(10, 0)
    alerts, state = evaluate_slo(base, _scrape(15, 0, slow=5), slo, SLOState())
    assert alerts == []  # 5 requests in the window: not judged
    alerts, state = evaluate_slo(base, _scrape(40, 0, slow=10), slo, state)  # 10 of 30 took 4 s
    assert [a.dedupe_key for a in alerts] == ["slo:1.0.0:p95_latency"] and alerts[0].details["value"] > 2.0
    alerts, state = evaluate_slo(_scrape(40, 0, slow=10), _scrape(5, 0, version="2.0.0"), slo, state)
    assert [(a.status, a.dedupe_key) for a in alerts] == [("resolved", "slo:1.0.0:p95_latency")]
    assert "no longer served" in alerts[0].title
