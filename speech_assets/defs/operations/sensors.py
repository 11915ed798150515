"""Alert sensors: a failed run, a drifted batch, a breached service objective reach the alert sink.

* `run_failure_alert_sensor` — every failed run of this code location: job, run id, failed step(s), the
  error, a link to the run in the UI.
* `ops_alert_sensor` — new `drift_report` materializations whose score reaches the threshold (cursor: the
  event log's storage id, so each batch is judged once), and the service's error rate and p95 latency per model
  version over the window since its previous tick (the previous scrape rides in the cursor), alerting once per
  breach and once more when it recovers.
* `service_recovery_sensor` — a dead or unready service while a production model exists: alert, start it again with
  the routing it had (`serving.recovery.decide` decides; `LocalTarget.restart(wait=False)` starts), "back" once ready.

Deliveries that fail are written to the alert log and to the tick log; they never fail the tick.
"""

import json
import time

import dagster as dg

from speech_assets import settings
from speech_assets.defs.operations.resources import AlertSinkResource
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.operations.alerts import (
    FIRING,
    RESOLVED,
    Alert,
    SLOState,
    counters_from_json,
    counters_to_json,
    drift_alert,
    evaluate_slo,
    run_failure_alert,
)
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.probe import scrape
from speech_assets.serving.recovery import Observed, RecoveryState
from speech_assets.serving.recovery import decide as decide_recovery
from speech_assets.serving.rollout import publish_deployment_record
from speech_assets.storage.audit_log import SERVICE_RECOVERY, new_event, record_event
from speech_assets.training.artifacts import MODEL_NAME

RUN_FAILURE_INTERVAL_S = settings.sensor_interval_s("run_failure", 30)
ALERT_INTERVAL_S = settings.sensor_interval_s("alert", 60)
RECOVERY_INTERVAL_S = settings.sensor_interval_s("recovery", 30)
SCRAPE_TIMEOUT_S = 5.0


def _error_text(error) -> str:
    """A step's error as a person reads it: the message and its causes, without the stack."""
    parts = []
    while error is not None and len(parts) < 4:
        parts.append(error.message.strip())
        error = error.cause
    return " | caused by: ".join(parts)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=RUN_FAILURE_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert (alert log, and the webhook when SPEECH_ASSETS_ALERT_WEBHOOK is set) for every "
    "failed run: job, run id, failed steps, the error and a link to the run.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertSinkResource):
    run = context.dagster_run
    failures = context.get_step_failure_events()
    steps = [e.step_key for e in failures if e.step_key]
    errors = [_error_text(e.step_failure_data.error) for e in failures if e.step_failure_data.error is not None]
    # A run can fail without a failed step (it could not start, or was killed): the run's own event says why.
    error = "\n".join(errors) or (context.failure_event.message or "run failed")
    alert = run_failure_alert(run.job_name, run.run_id, steps, error, alerts.run_url(run.run_id),
                              partition=run.tags.get("dagster/partition"))
    delivery = alerts.sink().send(alert)
    context.log.info(f"{alert.title}: logged={delivery.logged}, webhook {delivery.webhook}"
                     + (f" ({delivery.error})" if delivery.error else ""))


def _drift_alerts(context, alerts: AlertSinkResource, after: str | None):
    result = context.instance.fetch_materializations(dg.AssetKey("drift_report"), limit=100, cursor=after,
                                                     ascending=True)
    found = []
    for record in result.records:
        mat = record.asset_materialization
        md = {k: v.value for k, v in mat.metadata.items()}
        if md.get("status") != "judged":  # no production model yet, or a batch the model was trained on
            continue
        fired = [x for x in str(md.get("fired", "")).split(", ") if x and x != "none"]
        report = {"batch_id": mat.partition or "?", "score": md.get("drift_score", 0.0), "fired": fired,
                  "utterances": md.get("utterances"), "reference_model": md.get("reference_model")}
        alert = drift_alert(report, alerts.drift_threshold, link=str(md.get("dagster/uri", "")))
        if alert is not None:
            found.append(alert)
    return found, (result.cursor if result.records else after)


@dg.sensor(
    name="ops_alert_sensor",
    minimum_interval_seconds=ALERT_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts on drifted batches (drift_report score at or above the threshold) and on the service's "
    "error rate / p95 latency objectives per model version (once per breach, again when resolved).",
)
def ops_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertSinkResource, serving: ServingResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    found, drift_cursor = _drift_alerts(context, alerts, cursor.get("drift"))
    notes = []

    slo_state = SLOState.from_dict(cursor.get("slo_state"))
    scrape_json, scrape_url = cursor.get("slo_scrape"), cursor.get("slo_url")
    status = serving.target().status()
    if not status.ready:
        notes.append("service not running: SLO not judged")
    else:
        try:
            current = scrape(status.url, timeout_s=SCRAPE_TIMEOUT_S, traffic="live")
        except (OSError, ValueError) as exc:
            notes.append(f"service /metrics not readable ({type(exc).__name__}: {exc}): SLO not judged")
        else:
            if scrape_json is None:
                notes.append("first scrape: SLO window opens now")
            else:
                # A new server (blue/green switch to another port) counts from zero: its whole life is the window.
                previous = counters_from_json(scrape_json) if scrape_url == status.url else None
                slo_alerts, slo_state = evaluate_slo(previous, current, alerts.slo(), slo_state, service=status.url)
                found += slo_alerts
            scrape_json, scrape_url = counters_to_json(current), status.url

    sink = alerts.sink()
    failed = 0
    for alert in found:
        delivery = sink.send(alert)
        failed += delivery.webhook == "failed"
        context.log.info(f"{alert.text()} — logged={delivery.logged}, webhook {delivery.webhook}"
                         + (f" ({delivery.error})" if delivery.error else ""))
    context.update_cursor(json.dumps({"drift": drift_cursor, "slo_state": slo_state.to_dict(),
                                      "slo_scrape": scrape_json, "slo_url": scrape_url}))
    summary = f"{len(found)} alert(s) sent" + (f", {failed} webhook deliveries failed" if failed else "")
    return dg.SkipReason("; ".join([summary, *notes]))


@dg.sensor(
    name="service_recovery_sensor",
    minimum_interval_seconds=RECOVERY_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A served model is never silently unserved: when the service is down or unready while a production "
    "model exists (and no person stopped it), alerts and starts it again with the routing it had (a canary resumes "
    "by its rules); says when it is back; after repeated failed starts hands over to a person. Each restart and "
    "recovery is a deployment record in the store (the audit trail).",
)
def service_recovery_sensor(context: dg.SensorEvaluationContext, store: VersionStoreResource,
                            serving: ServingResource, alerts: AlertSinkResource):
    target = serving.target()
    status, routing = target.status(), target.routing()
    production = None
    if not status.ready:
        production = ModelRegistry(store.open(), store.repository).production(MODEL_NAME)
    observed = Observed(ready=status.ready, process_alive=status.pid is not None,
                        deployed=bool(status.bento_tag) and routing is not None and not target.stopped_on_purpose,
                        production_version=production.version if production else None)
    cursor = json.loads(context.cursor) if context.cursor else {}
    decision = decide_recovery(observed, RecoveryState.from_dict(cursor.get("recovery")), now=time.time())
    message = decision.reason
    if decision.action == "restart":
        try:
            status = target.restart(wait=False)
            message += f"; starting on {status.url or '?'} (pid {status.pid})"
        except Exception as exc:  # noqa: BLE001 - a failed start is the next tick's (and the alert's) business
            message += f"; start failed: {type(exc).__name__}: {exc}"
    if decision.alert:
        resolved = decision.action == "recovered"
        alert = Alert("service", "info" if resolved else "critical",
                      f"ASR service {'back' if resolved else 'down'}: {decision.action}",
                      {"reason": message, "url": status.url or "", "routing_revision": status.routing_revision},
                      dedupe_key=f"service-down:{target.home}", status=RESOLVED if resolved else FIRING)
        delivery = alerts.sink().send(alert)
        context.log.info(f"{alert.text()} — logged={delivery.logged}, webhook {delivery.webhook}")
    if (decision.action == "restart" or decision.alert) and routing is not None:
        vs = store.open()
        publish_deployment_record(vs, store.repository, status, routing,
                                  f"service-recovery-{decision.action}", message)
        # and in the platform audit trail, beside approvals and policy changes: who served what is audited
        record_event(vs, store.repository, new_event(
            SERVICE_RECOVERY, "service_recovery_sensor", f"asr service {status.url or target.home}",
            f"{decision.action}: {message}"[:300],
            {"action": decision.action, "reason": message, "url": status.url or "", "pid": status.pid,
             "routing_revision": status.routing_revision,
             "champion": routing.champion.version if routing.champion else None,
             "challenger": routing.challenger.version if routing.challenger else None,
             "challenger_weight_pct": routing.weight}))
    context.update_cursor(json.dumps({"recovery": decision.state.to_dict()}))
    return dg.SkipReason(f"{decision.action}: {message}")
