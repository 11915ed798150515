"""One refresh of the operations dashboard: what `ops_dashboard` runs (no Dagster).

    refreshed = refresh_dashboard(store, repo, service_url, settings.reports_dir() / "ops_dashboard.html")

It reads the store at one commit, scrapes the live service, draws the page, replaces the local file atomically
and stores a copy (`storage.layout.DASHBOARD_PATH`) only when what the page shows from the store changed: a
refresh that only moves the live-service numbers would otherwise add a ~130 KB commit to main each time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from speech_assets.operations.dashboard import (
    DashboardData,
    DashboardLimits,
    ServiceSnapshot,
    build_dashboard,
    collect_dashboard_data,
    scrape_service,
    with_service,
)
from speech_assets.storage.base import NotFoundError, VersionStore
from speech_assets.storage.layout import DASHBOARD_DIGEST_PATH, DASHBOARD_PATH, DRIFT_PREFIX
from speech_assets.storage.publish import publish_objects
from speech_assets.training.artifacts import MODEL_NAME


@dataclass(frozen=True)
class DashboardRefresh:
    data: DashboardData  # what the page shows, the service included
    page: bytes
    local_path: Path
    commit: str  # the commit that holds the stored page (the read commit when nothing changed)
    stored: bool  # False: the store's copy already showed the same store content

    @property
    def service(self) -> ServiceSnapshot:
        return self.data.service


def store_content_digest(data: DashboardData) -> str:
    """What the page shows from the store (not the time stamp, the commit it was read at — the stored page itself
    moves main — or the live service's numbers)."""
    body = dataclasses.asdict(dataclasses.replace(data, generated_at="", store_commit="", service=None))
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _write_atomically(path: Path, page: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_bytes(page)
    tmp.replace(path)  # readers (a browser refreshing it) never see a half-written page


def refresh_dashboard(store: VersionStore, repo: str, service_url: str | None, local_path: Path,
                      limits: DashboardLimits = DashboardLimits(), *, run_id: str = "") -> DashboardRefresh:
    """Draw the page from the store and the service at `service_url` (None: nothing is deployed), write it to
    `local_path` and, when its store content changed, to the store."""
    data = collect_dashboard_data(store, repo, model=MODEL_NAME, drift_prefix=DRIFT_PREFIX,
                                  max_versions=limits.max_versions, max_batches=limits.max_batches)
    data = with_service(data, scrape_service(service_url, timeout_s=limits.scrape_timeout_s))
    page = build_dashboard(data).encode("utf-8")
    _write_atomically(local_path, page)  # the local file is always refreshed
    digest = store_content_digest(data)
    try:
        unchanged = store.get_object(repo, data.store_commit, DASHBOARD_DIGEST_PATH).decode() == digest
    except NotFoundError:
        unchanged = False
    if unchanged:
        return DashboardRefresh(data, page, local_path, data.store_commit, stored=False)
    commit = publish_objects(
        store, repo, {DASHBOARD_PATH: page, DASHBOARD_DIGEST_PATH: digest.encode()}, branch_prefix="ops-dashboard",
        message="ops_dashboard", metadata={"run_id": run_id}, base=data.store_commit,
        content_types={DASHBOARD_PATH: "text/html"},
    )
    return DashboardRefresh(data, page, local_path, commit, stored=True)
