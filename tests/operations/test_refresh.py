"""`operations.refresh.refresh_dashboard` without Dagster: the local page is always rewritten, the store's copy only
when what the page shows from the store changed, and the limits it is given bound what it reads."""

from __future__ import annotations

from speech_assets.operations.dashboard import DashboardLimits
from speech_assets.operations.refresh import refresh_dashboard, store_content_digest
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.layout import DASHBOARD_DIGEST_PATH, DASHBOARD_PATH
from speech_assets.storage.local import LocalVersionStore
from tests.operations.test_dashboard import _register, _report

REPO = "speech-assets"


def test_the_store_keeps_a_copy_only_when_its_content_changed(tmp_path):
    local = tmp_path / "reports" / "ops_dashboard.html"
    with LocalVersionStore(tmp_path / "store") as store:
        store.create_repository(REPO)
        registry = ModelRegistry(store, REPO)
        _register(registry, b"w1", _report(0.11, 0.09))
        registry.set_stage("asr", "1.0.0", "production", "op", "first model")

        first = refresh_dashboard(store, REPO, None, local, run_id="run-1")
        assert first.stored and local.read_bytes() == first.page
        assert store.get_object(REPO, first.commit, DASHBOARD_PATH) == first.page
        assert store.get_object(REPO, first.commit, DASHBOARD_DIGEST_PATH).decode() == store_content_digest(first.data)
        assert not first.service.reachable and "no service is running" in first.service.error

        second = refresh_dashboard(store, REPO, None, local, run_id="run-2")
        assert not second.stored and second.commit == first.commit == store.resolve(REPO, "main")
        assert local.read_bytes() == second.page and not local.with_suffix(".html.tmp").exists()

        _register(registry, b"w2", _report(0.10, 0.08))
        third = refresh_dashboard(store, REPO, None, local, DashboardLimits(max_versions=1), run_id="run-3")
        assert third.stored and third.commit != first.commit
        assert [v.version for v in third.data.versions] == ["1.1.0"]
        assert any("showing the latest 1 of 2 versions" in n for n in third.data.notes)
