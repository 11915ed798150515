"""`ops_dashboard`: the operations page a person reads (WER per slice over versions, drift, canary, service)."""

import dagster as dg

from speech_assets import settings
from speech_assets.defs.monitoring.assets import drift_report
from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.operations.dashboard import DashboardLimits, key_numbers, summary_markdown
from speech_assets.operations.refresh import refresh_dashboard
from speech_assets.storage.layout import DASHBOARD_PATH

DASHBOARD_CRON = settings.dashboard_cron()  # read when the definitions load

# Refreshed on a clock (the service's numbers change without any asset changing) and after a model is
# registered; not after every batch's drift report: in the demo those land minute by minute, and a run per
# batch would spend the 2 cores on launching runs. The next cron tick picks the drift up.
DASHBOARD_AUTOMATION = (
    (
        dg.AutomationCondition.cron_tick_passed(DASHBOARD_CRON)
        | dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets("registered_model"))
    )
    & ~dg.AutomationCondition.in_progress()
).with_label(f"every {DASHBOARD_CRON!r} and after a model is registered")


class DashboardConfig(dg.Config):
    scrape_timeout_s: float = DashboardLimits.scrape_timeout_s  # a hung service must not hold the run
    max_versions: int = DashboardLimits.max_versions
    max_batches: int = DashboardLimits.max_batches

    def to_domain(self) -> DashboardLimits:
        return DashboardLimits(**self.model_dump())


@dg.asset(
    deps=[registered_model, drift_report],
    group_name="operations",
    owners=["team:speech-ml"],
    tags={"layer": "report", "domain": "operations"},
    kinds={"python", "html"},
    code_version="1",
    automation_condition=DASHBOARD_AUTOMATION,
    description=(
        "A self-contained HTML page for operators: WER per slice (with bootstrap intervals) over the registered "
        "model versions and their stages, drift score per batch with the fired signals, the canary decisions from "
        "the registry's audit trail, and the live service's p50/p95 latency and error rate per model version from "
        "its Prometheus /metrics. Published to the store (reports/ops_dashboard.html) and to "
        "<SPEECH_ASSETS_HOME>/reports/ops_dashboard.html."
    ),
)
def ops_dashboard(
    context: dg.AssetExecutionContext, config: DashboardConfig, store: VersionStoreResource, serving: ServingResource
) -> dg.MaterializeResult:
    # status.url is None when nothing is deployed or the server's process is gone; a server that is up but not
    # ready is still scraped (its /metrics may answer, and if it does not the page says why)
    url = serving.target().status().url
    refreshed = refresh_dashboard(store.open(), store.repository, url, settings.reports_dir() / "ops_dashboard.html",
                                  config.to_domain(), run_id=context.run.run_id)
    if not refreshed.stored:
        context.log.info("store-derived content unchanged since the last stored dashboard: local file refreshed only")
    data = refreshed.data
    metadata = {
        "path": dg.MetadataValue.path(str(refreshed.local_path)),
        "dagster/uri": dg.MetadataValue.path(store.uri(refreshed.commit, DASHBOARD_PATH)),
        "summary": dg.MetadataValue.md(summary_markdown(data)),
        "data_commit": dg.MetadataValue.text(data.store_commit),
        "commit_out": dg.MetadataValue.text(refreshed.commit),
        "size_bytes": len(refreshed.page),
        "stored": refreshed.stored,
        **{k: v for k, v in key_numbers(data).items() if isinstance(v, (int, float, str, bool))},
    }
    if not refreshed.service.reachable:
        context.log.info(f"service section: {refreshed.service.error}")
    return dg.MaterializeResult(metadata=metadata)
