"""Where alerts go and what they judge: the alert log, an optional webhook, the drift and SLO thresholds."""

from typing import Optional

import dagster as dg

from speech_assets import settings
from speech_assets.operations.alerts import SLO, AlertSink


class AlertSinkResource(dg.ConfigurableResource):
    """Alerts are appended to `log_path` (default `<SPEECH_ASSETS_HOME>/alerts/alerts.jsonl`) and, when
    SPEECH_ASSETS_ALERT_WEBHOOK is set, POSTed there as JSON. The webhook URL arrives as a Dagster `EnvVar`
    (such URLs usually embed their credential), so it is read at run time and never shown or logged."""

    log_path: str = ""
    webhook_url: Optional[str] = None
    timeout_s: float = 3.0
    retries: int = 2
    drift_threshold: float = 1.0  # drift score (max value/threshold of any signal) that alerts
    max_error_rate: float = SLO.max_error_rate  # per model version, over the window between two SLO checks
    max_p95_latency_s: float = SLO.max_p95_latency_s
    min_requests: int = SLO.min_requests  # fewer requests in a window: not judged
    ui_url: str = settings.DEFAULT_UI_URL  # links in run-failure alerts point here

    def sink(self) -> AlertSink:
        path = self.log_path or str(settings.data_home() / "alerts" / "alerts.jsonl")
        return AlertSink(path, self.webhook_url or None, timeout_s=self.timeout_s, retries=self.retries)

    def slo(self) -> SLO:
        return SLO(self.max_error_rate, self.max_p95_latency_s, self.min_requests)

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"


def alerts_from_env() -> AlertSinkResource:
    """SPEECH_ASSETS_ALERT_LOG moves the log file, SPEECH_ASSETS_ALERT_WEBHOOK adds the webhook,
    SPEECH_ASSETS_UI_URL says where the Dagster UI is for the links."""
    fields = {"ui_url": settings.ui_url(), "log_path": settings.alert_log()}
    if settings.has_alert_webhook():
        fields["webhook_url"] = dg.EnvVar(settings.ALERT_WEBHOOK)
    return AlertSinkResource(**fields)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"alerts": alerts_from_env()})
