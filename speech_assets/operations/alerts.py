"""Alerts: what went wrong, told to a log file and (optionally) a webhook, once per problem.

    sink = AlertSink(log_path="data/alerts/alerts.jsonl", webhook_url=os.environ.get("..."))
    result = sink.send(drift_alert(report))            # never raises for a failed delivery
    alerts, state = evaluate_slo(prev_scrape, scrape, SLO(), state)   # fire once per breach, resolve after

Delivery: the alert is appended to the log file as one JSON line *before* the webhook is tried, so a webhook
that is down, slow or rejecting never loses it; a failed POST (after `retries`) appends a `delivery_failed` line
and is reported in the returned `Delivery`, never raised into the caller (a sensor must keep ticking). A webhook
URL often carries its credential in the path or query (Slack, Teams, ...), so it is shown only as
scheme://host:port/… in every message and log line; the URL itself is written nowhere.

The webhook body is the alert's JSON plus a `text` field, which chat webhooks (Slack-compatible) display.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from speech_assets.serving import metrics as prom
from speech_assets.serving.metrics import counters_from_json, counters_to_json  # re-exported: the sensor keeps scrapes in its cursor

__all__ = [
    "Alert",
    "AlertSink",
    "Delivery",
    "SLO",
    "SLOState",
    "counters_from_json",
    "counters_to_json",
    "drift_alert",
    "evaluate_slo",
    "redact_url",
    "run_failure_alert",
]

logger = logging.getLogger(__name__)

FIRING, RESOLVED = "firing", "resolved"
SEVERITIES = ("info", "warning", "critical")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    kind: str  # run_failure | drift | slo
    severity: str  # info | warning | critical
    title: str
    details: Mapping[str, Any]
    dedupe_key: str  # one problem, one key: a receiver can group a firing alert with its resolution
    status: str = FIRING  # firing | resolved
    ts: str = field(default_factory=_now)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")
        if self.status not in (FIRING, RESOLVED):
            raise ValueError(f"status must be {FIRING!r} or {RESOLVED!r}, not {self.status!r}")
        if not self.dedupe_key:
            raise ValueError("an alert needs a dedupe key")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "status": self.status, "title": self.title,
                "details": _jsonable(self.details), "dedupe_key": self.dedupe_key, "ts": self.ts}

    def text(self) -> str:
        mark = "RESOLVED" if self.status == RESOLVED else self.severity.upper()
        return f"[{mark}] {self.title}"


def _jsonable(value: Any) -> Any:
    """JSON data only (NaN/inf as None, unknown objects as text): an alert must always serialise."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# -- the sink ---------------------------------------------------------------------------------------------------
def redact_url(url: str | None) -> str:
    """`https://hooks.example.com/services/T0/B0/secret?token=x` → `https://hooks.example.com/…`."""
    if not url:
        return ""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def _scrub(text: str, url: str | None) -> str:
    """`text` with every piece of `url` that may be secret replaced by its redacted form."""
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return text
    for secret in (parts.path if parts.path not in ("", "/") else "", parts.query, parts.fragment,
                   parts.password or "", parts.username or ""):
        if secret and len(secret) > 1:
            text = text.replace(secret, "…")
    return text


@dataclass(frozen=True)
class Delivery:
    logged: bool  # the line reached the log file (False also when no log file is configured)
    webhook: str  # "sent" | "failed" | "not configured"
    attempts: int = 0
    status_code: int | None = None
    error: str = ""  # redacted

    @property
    def ok(self) -> bool:
        return self.webhook in ("sent", "not configured") and (self.logged or self.webhook == "sent")


class AlertSink:
    """Appends alerts to a JSON-lines log file and POSTs them to a webhook; either may be left out, not both."""

    def __init__(self, log_path: str | os.PathLike | None = None, webhook_url: str | None = None,
                 timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5, down_s: float = 60.0):
        if not log_path and not webhook_url:
            raise ValueError("an alert sink needs a log file, a webhook URL, or both")
        if webhook_url:
            scheme = urllib.parse.urlsplit(webhook_url).scheme
            if scheme not in ("http", "https"):
                raise ValueError(f"webhook URL must be http(s), not {scheme or 'schemeless'} ({redact_url(webhook_url)})")
        if retries < 0 or timeout_s <= 0:
            raise ValueError("retries must be >= 0 and timeout_s > 0")
        self.log_path = Path(log_path) if log_path else None
        self._webhook_url = webhook_url or None
        self.timeout_s, self.retries, self.backoff_s = float(timeout_s), int(retries), float(backoff_s)
        self.down_s, self._down_until = float(down_s), 0.0
        self._lock = threading.Lock()

    @property
    def webhook(self) -> str:
        """The webhook as it may be shown (redacted)."""
        return redact_url(self._webhook_url) if self._webhook_url else "not configured"

    def __repr__(self) -> str:  # never the raw URL, even in a traceback's locals
        return f"AlertSink(log_path={str(self.log_path) if self.log_path else None!r}, webhook={self.webhook!r})"

    def send(self, alert: Alert) -> Delivery:
        logged = self._append({"type": "alert", **alert.to_json()})
        if not self._webhook_url:
            return Delivery(logged, "not configured")
        delivery = self._post(alert)
        delivery = Delivery(logged, delivery.webhook, delivery.attempts, delivery.status_code, delivery.error)
        if delivery.webhook == "failed":
            logger.warning("alert %s not delivered to %s: %s", alert.dedupe_key, self.webhook, delivery.error)
            self._append({"type": "delivery_failed", "dedupe_key": alert.dedupe_key, "alert_ts": alert.ts,
                          "webhook": self.webhook, "attempts": delivery.attempts, "error": delivery.error,
                          "ts": _now()})
        return delivery

    def _append(self, record: Mapping[str, Any]) -> bool:
        if self.log_path is None:
            return False
        line = (json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # One write of one line with O_APPEND: lines from concurrent senders (sensor threads, processes)
            # never interleave; the lock covers writers in this process on filesystems without atomic appends.
            with self._lock:
                fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except OSError as exc:
            logger.error("alert log %s not writable: %s", self.log_path, exc)
            return False
        return True

    def _post(self, alert: Alert) -> Delivery:
        body = json.dumps({**alert.to_json(), "text": alert.text()}, sort_keys=True, allow_nan=False).encode("utf-8")
        error, code = "", None
        # After a failed delivery the webhook gets one attempt per alert for a while: a receiver that is down
        # must not make every alert of a sensor tick wait through all its retries.
        retries = 0 if time.monotonic() < self._down_until else self.retries
        for attempt in range(1, retries + 2):
            request = urllib.request.Request(
                self._webhook_url, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "speech-assets-alerts/1"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as r:
                    r.read()
                    self._down_until = 0.0
                    return Delivery(False, "sent", attempt, r.status)
            except urllib.error.HTTPError as exc:
                code, error = exc.code, f"HTTP {exc.code} {exc.reason}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break  # the receiver rejects this alert: sending it again will not change its mind
            except (OSError, ValueError) as exc:  # refused, reset, DNS, timeout
                code, error = None, f"{type(exc).__name__}: {exc}"
            if attempt <= retries:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        self._down_until = time.monotonic() + self.down_s
        return Delivery(False, "failed", attempt, code, _scrub(error, self._webhook_url))


# -- alert builders ---------------------------------------------------------------------------------------------
def run_failure_alert(job_name: str, run_id: str, steps: list[str] | tuple[str, ...], error: str,
                      run_url: str = "", partition: str | None = None) -> Alert:
    """A failed Dagster run: which job, which run, which step(s), what the error said, where to look."""
    where = f" at {', '.join(steps)}" if steps else ""
    details = {"job": job_name, "run_id": run_id, "steps": list(steps), "error": error[:4000], "run_url": run_url}
    if partition:
        details["partition"] = partition
    return Alert("run_failure", "critical", f"run {run_id[:8]} of {job_name} failed{where}", details,
                 dedupe_key=f"run_failure:{run_id}")


def drift_alert(report: Mapping[str, Any], threshold: float = 1.0, link: str = "") -> Alert | None:
    """An alert for a drift report whose score reaches `threshold` (1.0: a signal at its own threshold); None
    for a calm batch, and for a batch the reference model was trained on (it cannot drift from itself)."""
    score = float(report.get("score") or 0.0)
    if report.get("in_reference") or not math.isfinite(score) or score < threshold:
        return None
    batch = str(report.get("batch_id", "?"))
    fired = [str(f) for f in report.get("fired") or []]
    details = {"batch_id": batch, "score": round(score, 4), "threshold": threshold, "fired": fired,
               "utterances": report.get("utterances"), "reference_model": report.get("reference_model")}
    if link:
        details["link"] = link
    severity = "critical" if score >= 2 * threshold else "warning"
    what = ", ".join(fired[:5]) + (f" and {len(fired) - 5} more" if len(fired) > 5 else "") if fired else "score"
    return Alert("drift", severity, f"drift in batch {batch}: {what} (score {score:.2f})", details,
                 dedupe_key=f"drift:{batch}")


# -- SLO over a window of two scrapes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SLO:
    max_error_rate: float = 0.02  # server errors / requests in the window
    max_p95_latency_s: float = 2.0
    min_requests: int = 20  # a window with fewer requests is not judged (neither breach nor recovery)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SLOState:
    """The objectives currently in breach: dedupe key → when the breach alert went out and its numbers."""

    breaching: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"breaching": dict(self.breaching)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SLOState:
        return cls(dict((d or {}).get("breaching") or {}))


def evaluate_slo(
    previous: Mapping[str, prom.VersionCounters] | None,
    current: Mapping[str, prom.VersionCounters],
    slo: SLO = SLO(),
    state: SLOState | None = None,
    service: str = "",
) -> tuple[list[Alert], SLOState]:
    """Judge each model version's error rate and p95 latency over the window `previous` → `current`.

    An objective that goes into breach raises one alert; while it stays in breach nothing more is sent (the
    key is in `state`); when a judged window is back within the objective, one `resolved` alert follows. A
    version that no longer appears in the scrape (rolled back, server replaced) resolves its open breaches.
    """
    state = SLOState(dict((state or SLOState()).breaching))
    window = prom.window(dict(current), dict(previous) if previous is not None else None)
    alerts: list[Alert] = []
    for version in sorted(window):
        m = window[version]
        if m.requests < slo.min_requests:
            continue  # too few requests to tell: keep whatever state the objective is in
        checks = (
            ("error_rate", m.error_rate, slo.max_error_rate, m.error_rate > slo.max_error_rate,
             f"error rate {m.error_rate:.1%} > {slo.max_error_rate:.1%}"),
            ("p95_latency", m.p95_latency_s, slo.max_p95_latency_s,
             math.isfinite(m.p95_latency_s) and m.p95_latency_s > slo.max_p95_latency_s,
             f"p95 latency {m.p95_latency_s:.2f} s > {slo.max_p95_latency_s:.2f} s"),
        )
        for objective, value, limit, breached, what in checks:
            key = f"slo:{version}:{objective}"
            details = {"model_version": version, "objective": objective, "value": value, "limit": limit,
                       "requests": m.requests, "errors": m.errors, "service": service}
            if breached and key not in state.breaching:
                alerts.append(Alert("slo", "critical", f"SLO breach: model {version} {what}", details, key))
                state.breaching[key] = {"since": alerts[-1].ts, "value": _jsonable(value)}
            elif not breached and key in state.breaching:
                since = state.breaching.pop(key).get("since")
                alerts.append(Alert("slo", "info", f"SLO recovered: model {version} {objective} back within "
                                    f"{limit:g}", {**details, "breaching_since": since}, key, status=RESOLVED))
    for key in sorted(state.breaching):
        version = key.split(":")[1]
        if version not in current:
            since = state.breaching.pop(key).get("since")
            alerts.append(Alert("slo", "info", f"SLO resolved: model {version} is no longer served",
                                {"model_version": version, "objective": key.split(":")[2],
                                 "breaching_since": since, "service": service}, key, status=RESOLVED))
    return alerts, state
