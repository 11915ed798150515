"""The operations dashboard: sections, numbers, embedded plots, no external URL; gathered from a real store."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from speech_assets.monitoring.drift import DriftReport, Signal
from speech_assets.operations.dashboard import (
    CanaryEvent,
    DashboardData,
    DriftPoint,
    ServiceSnapshot,
    SliceWER,
    VersionEval,
    build_dashboard,
    collect_dashboard_data,
    key_numbers,
    scrape_service,
    service_snapshot_from_text,
    summary_markdown,
    with_service,
)
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.local import LocalVersionStore
from speech_assets.storage.publish import publish_objects
from tests.operations.conftest import LoopbackServer, closed_port, metrics_text

REPO = "ops-test"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._in_h = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_h = tag in ("h1", "h2", "h3")
        if self._in_h:
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3"):
            self._in_h = False

    def handle_data(self, data):
        if self._in_h:
            self.headings[-1] += data


def parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    return p


def synthetic() -> DashboardData:
    v1 = VersionEval("1.0.0", "archived", "2026-01-01T00:00:00+00:00", "a" * 64, 0.95, (
        SliceWER("overall", 0.1234, (0.1100, 0.1400), 500),
        SliceWER("accent=us", 0.1000, (0.0800, 0.1200), 300),
        SliceWER("channel=noisy", 0.2500, (0.1800, 0.3300), 40, gated=False),
        SliceWER("channel=reverb", 0.1250, (0.1250, 0.1250), 2, gated=False, n_speakers=2),
    ))
    v2 = VersionEval("1.1.0", "production", "2026-01-02T00:00:00+00:00", "b" * 64, 0.95, (
        SliceWER("overall", 0.0987, (0.0900, 0.1080), 600),
        SliceWER("accent=us", 0.0850, (0.0700, 0.1000), 320),
        SliceWER("accent=caribbean", 0.3100, (0.2500, 0.3700), 80),
    ))
    drift = (
        DriftPoint("day-1", 0.4, False, (), 300, "1.0.0", in_reference=True),
        DriftPoint("day-2", 0.61, False, (), 300, "1.0.0"),
        DriftPoint("day-10", 3.75, True, ("accent_mix_js", "unseen_accent_share"), 1200, "1.0.0"),
    )
    events = (
        CanaryEvent("2026-01-02T01:00:00+00:00", "1.1.0", "start", None, None, "promotion gate passed", "dagster"),
        CanaryEvent("2026-01-02T01:05:00+00:00", "1.1.0", "step", 10.0, 50.0, "healthy at 10%: step to 50%", "canary_sensor"),
        CanaryEvent("2026-01-02T01:10:00+00:00", "1.1.0", "promote", 100.0, 0.0, "canary promoted", "canary_sensor"),
    )
    service = service_snapshot_from_text(metrics_text(
        {"1.1.0": {"ok": 97, "server_error": 3, "latencies": [0.08] * 50 + [0.3] * 45 + [1.2] * 5},
         "1.0.0": {"ok": 10, "traffic": "pinned", "latencies": [0.04] * 10}},
        endpoints={"/transcribe": [(200, 0.09)] * 20 + [(500, 0.5)] * 2},
    ), "http://127.0.0.1:3100")
    return DashboardData("asr", "2026-01-03T00:00:00Z", "c" * 64, "1.1.0", None, (v1, v2), drift, events, service)


def test_dashboard_has_every_section_numbers_and_embedded_plots_without_external_urls():
    data = synthetic()
    html = build_dashboard(data)
    doc = parse(html)
    assert doc.headings[:5] == ["Operations: asr", "WER per slice over model versions", "Drift over batches",
                                "Batches with fired signals", "Canary decisions"]
    assert "Service: latency and errors" in doc.headings
    # WER table: every slice of every version, CIs, stage of each version, the slice one version lacks as "—"
    assert "12.34% [11.0%, 14.0%]" in html and "9.87% [9.0%, 10.8%]" in html
    assert "1.0.0 (archived)" in html and "1.1.0 (production)" in html
    assert "25.00% [18.0%, 33.0%] (too few to judge)" in html
    # a bootstrap over 2 speakers is not an interval: the cell says so instead of printing [12.5%, 12.5%]
    assert "12.50% (2 speakers: no interval) (too few to judge)" in html and "[12.5%, 12.5%]" not in html
    assert re.search(r"<td>accent=caribbean</td><td>—</td><td>31\.00%", html)
    # drift: the fired batch and its signals in the table
    assert "<td>day-10</td><td>3.75</td><td>accent_mix_js, unseen_accent_share</td>" in html
    # canary: time, version, action, weights, reason
    assert "<td>2026-01-02 01:05:00</td><td>1.1.0</td><td>step</td><td>10%</td><td>50%</td>" in html
    # service: 3 server errors in 100 live requests; p50 within the 0.05-0.1 s bucket, p95 in 0.35-0.5
    svc = {(v.version, v.traffic): v for v in data.service.versions}
    assert svc[("1.1.0", "live")].error_rate == pytest.approx(0.03)
    assert 50 <= svc[("1.1.0", "live")].p50_s * 1000 <= 100
    assert 350 <= svc[("1.1.0", "live")].p95_s * 1000 <= 500
    assert "<td>1.1.0</td><td>live</td><td>100</td><td>3</td><td>3.00%</td>" in html
    assert "<td>/transcribe</td><td>22</td><td>2</td>" in html

    images = [a["src"] for t, a in doc.tags if t == "img"]
    assert len(images) == 2  # WER over versions, drift over batches
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    # nothing is fetched from anywhere: no script, no stylesheet link, every src/href a data URI or an anchor
    assert not [t for t, _ in doc.tags if t in ("script", "link", "iframe")]
    refs = [a.get(k) for _, a in doc.tags for k in ("src", "href") if a.get(k)]
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    assert "url(" not in html


def test_unreachable_service_and_empty_store_are_stated_plainly():
    empty = DashboardData("asr", "2026-01-03T00:00:00Z",
                          service=ServiceSnapshot("http://127.0.0.1:1", False, "service not reachable at x: refused"))
    html = build_dashboard(empty)
    assert "Service not reachable." in html and "refused" in html
    assert "No version of asr is registered yet." in html
    assert "No drift report has been published yet." in html
    assert "No canary rollout has been recorded yet." in html
    assert "<img" not in html
    assert key_numbers(empty)["service_reachable"] is False


def test_scrape_service_reads_metrics_and_says_when_the_service_is_down():
    down = scrape_service(f"http://127.0.0.1:{closed_port()}", timeout_s=2)
    assert not down.reachable and "not reachable" in down.error
    assert not scrape_service(None).reachable

    server = LoopbackServer()
    try:
        server.routes["/metrics"] = (200, metrics_text({"2.0.0": {"ok": 40, "latencies": [0.2] * 40}}).encode())
        snap = scrape_service(server.url, timeout_s=2)
    finally:
        server.close()
    assert snap.reachable and snap.error == ""
    (row,) = snap.versions
    assert (row.version, row.traffic, row.requests, row.server_errors) == ("2.0.0", "live", 40, 0)
    # every observation in the (0.1, 0.2] bucket: interpolated like histogram_quantile, 0.1 + 0.95 * 0.1
    assert row.p95_s == pytest.approx(0.195)


def _register(registry: ModelRegistry, weights: bytes, report: dict):
    return registry.register(
        "asr", weights, data_commits=["d" * 64], feature_config_hash="feat", vocabulary_hash="vocab",
        code_version="git-1", training_config={"epochs": 1}, seed=1, eval_report_json=report,
        calibration_json={"temperature": 1.0}, actor="trainer",
    )


def _report(wer: float, accent_wer: float) -> dict:
    return {"schema_version": 1, "model_id": "m", "data_commit": "e" * 64, "n_utterances": 200, "n_speakers": 9,
            "wer": wer, "wer_ci": [wer - 0.01, wer + 0.01], "cer": 0.05, "cer_ci": [0.04, 0.06], "level": 0.95,
            "slices": [{"column": "accent", "value": "us", "n_utterances": 120, "n_speakers": 5, "wer": accent_wer,
                        "wer_ci": [accent_wer - 0.02, accent_wer + 0.02], "cer": 0.04, "cer_ci": [0.03, 0.05],
                        "gated": True, "note": ""}]}


def test_collect_reads_versions_drift_and_canary_decisions_from_the_store(tmp_path):
    with LocalVersionStore(tmp_path / "store") as store:
        store.create_repository(REPO)
        registry = ModelRegistry(store, REPO)
        _register(registry, b"weights-1", _report(0.12, 0.10))
        registry.set_stage("asr", "1.0.0", "production", "op", "first model")
        v2 = _register(registry, b"weights-2", _report(0.09, 0.08))
        registry.set_stage("asr", v2.version, "canary", "dagster", "gate passed: rolled out as a canary")
        registry.record_decision("asr", v2.version, "canary_sensor", "healthy at 10%: step to 50%",
                                 {"decision": {"action": "step", "weight": 50.0, "reason": "ok", "rules": []},
                                  "weight": 10.0, "sample": {"probe_power": 0.62, "live_requests": 40,
                                                             "live_requests_needed": 149}})
        registry.set_stage("asr", v2.version, "archived", "canary_sensor", "canary rolled back: error rate",
                           evidence={"decision": {"action": "rollback", "weight": 0.0, "reason": "error rate",
                                                  "rules": [{"name": "error_rate", "passed": False, "detail": "5%"}]},
                                     "weight": 50.0})
        calm = DriftReport("day-2", 300, [Signal("snr_psi", 0.05, 0.25, "ok", 300)])
        drifted = DriftReport("day-10", 600, [Signal("accent_mix_js", 0.6, 0.2, "drift", 600)])
        objects = {f"monitoring/drift/{r.batch_id}.json": json.dumps({**r.to_dict(), "reference_model": "1.0.0",
                                                                      "in_reference": False}).encode()
                   for r in (drifted, calm)}
        publish_objects(store, REPO, objects, branch_prefix="drift", message="drift", metadata={})

        data = collect_dashboard_data(store, REPO)

    assert [(v.version, v.stage) for v in data.versions] == [("1.0.0", "production"), (v2.version, "archived")]
    assert data.production == "1.0.0" and data.canary is None
    assert data.versions[1].slice("overall").wer == pytest.approx(0.09)
    assert data.versions[1].slice("accent=us").ci == pytest.approx((0.06, 0.10))
    # natural order: day-2 before day-10; the drifted one carries its score (0.6 / 0.2) and fired signal
    assert [d.batch_id for d in data.drift] == ["day-2", "day-10"]
    assert data.drift[1].drifted and data.drift[1].score == pytest.approx(3.0)
    assert data.drift[1].fired == ("accent_mix_js",)
    assert [(e.action, e.weight_before, e.weight_after) for e in data.canary_events] == [
        ("start", None, None), ("step", 10.0, 50.0), ("rollback", 50.0, 0.0)]
    assert data.canary_events[-1].failed_rules == ("error_rate",)
    # each decision shows the power its sample had; the table leads with the policy's rollout criteria
    assert data.canary_events[1].probe_power == pytest.approx(0.62) and data.canary_events[1].live_sample == "40 / 149"
    assert data.rollout["mode"] == "canary" and data.rollout["stored"] is False
    page = build_dashboard(data)
    assert "rollout criteria (release policy defaults): mode canary; minimum effect 2.0% WER at power 80%, alpha " \
           "0.05; bake window 15.0 min after a promotion" in page
    assert "<th>power (probe)</th>" in page and "<td>62%</td>" in page and "<td>40 / 149</td>" in page
    assert "| Rollout criteria | mode canary;" in summary_markdown(data)
    # the first model's promotion to production is not a canary decision
    assert all(e.version == v2.version for e in data.canary_events)

    html = build_dashboard(with_service(data, scrape_service(None)))
    assert "error_rate" in html and "healthy at 10%: step to 50%" in html
    md = summary_markdown(data)
    assert "| Production | 1.0.0 |" in md and "| Drift reports / drifted | 2 / 1 |" in md
