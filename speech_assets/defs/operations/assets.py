"""`ops_dashboard`: the operations page a person reads (WER per slice over versions, drift, canary, service)."""

import dataclasses
import hashlib
import json
import os

import dagster as dg

from speech_assets.defs.monitoring.assets import DRIFT_PREFIX, drift_report
from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.operations.dashboard import (
    build_dashboard,
    collect_dashboard_data,
    key_numbers,
    scrape_service,
    summary_markdown,
    with_service,
)
from speech_assets.settings import data_home
from speech_assets.storage.base import NotFoundError
from speech_assets.storage.publish import publish_objects
from speech_assets.training.artifacts import MODEL_NAME

DASHBOARD_PATH = "reports/ops_dashboard.html"
DASHBOARD_DIGEST_PATH = "reports/ops_dashboard.sha256"  # digest of the store-derived content of the stored page
DASHBOARD_CRON = os.environ.get("SPEECH_ASSETS_DASHBOARD_CRON", "*/15 * * * *")

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


def store_content_digest(data) -> str:
    """What the page shows from the store (not the time stamp, the commit it was read at — the stored page itself
    moves main — or the live service's numbers)."""
    body = dataclasses.asdict(dataclasses.replace(data, generated_at="", store_commit="", service=None))
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class DashboardConfig(dg.Config):
    scrape_timeout_s: float = 3.0  # a hung service must not hold the run
    max_versions: int = 12
    max_batches: int = 60


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
    vs, repo = store.open(), store.repository
    data = collect_dashboard_data(vs, repo, model=MODEL_NAME, drift_prefix=DRIFT_PREFIX,
                                  max_versions=config.max_versions, max_batches=config.max_batches)
    status = serving.target().status()
    # status.url is None when nothing is deployed or the server's process is gone; a server that is up but not
    # ready is still scraped (its /metrics may answer, and if it does not the page says why)
    service = scrape_service(status.url, timeout_s=config.scrape_timeout_s)
    data = with_service(data, service)
    page = build_dashboard(data).encode("utf-8")

    local = data_home() / "reports" / "ops_dashboard.html"
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_suffix(".html.tmp")
    tmp.write_bytes(page)
    tmp.replace(local)  # readers (a browser refreshing it) never see a half-written page
    # The store keeps a copy when what it shows from the store changed (a version, a drift report, a canary
    # decision): a refresh every 15 minutes that only moves the live-service numbers would otherwise add a
    # ~130 KB commit to main each time. The local file is always refreshed.
    digest = store_content_digest(data)
    try:
        unchanged = vs.get_object(repo, data.store_commit, DASHBOARD_DIGEST_PATH).decode() == digest
    except NotFoundError:
        unchanged = False
    if unchanged:
        commit = data.store_commit
        context.log.info("store-derived content unchanged since the last stored dashboard: local file refreshed only")
    else:
        commit = publish_objects(
            vs, repo, {DASHBOARD_PATH: page, DASHBOARD_DIGEST_PATH: digest.encode()}, branch_prefix="ops-dashboard",
            message="ops_dashboard", metadata={"run_id": context.run.run_id}, base=data.store_commit,
            content_types={DASHBOARD_PATH: "text/html"},
        )
    numbers = key_numbers(data)
    metadata = {
        "path": dg.MetadataValue.path(str(local)),
        "dagster/uri": dg.MetadataValue.path(store.uri(commit, DASHBOARD_PATH)),
        "summary": dg.MetadataValue.md(summary_markdown(data)),
        "data_commit": dg.MetadataValue.text(data.store_commit),
        "commit_out": dg.MetadataValue.text(commit),
        "size_bytes": len(page),
        "stored": not unchanged,
        **{k: v for k, v in numbers.items() if isinstance(v, (int, float, str, bool))},
    }
    if not service.reachable:
        context.log.info(f"service section: {service.error}")
    return dg.MaterializeResult(metadata=metadata)
