"""`monitoring.batch_report.judge_batch` without Dagster, where it needs no model: with nothing in production there is
no population to drift from, so it judges nothing and stores nothing (the judged path runs in
`test_drift_pipeline.py`, with a trained model)."""

from __future__ import annotations

from speech_assets.defs.monitoring.assets import DriftAssetConfig
from speech_assets.monitoring.batch_report import judge_batch
from speech_assets.monitoring.drift import DriftConfig
from speech_assets.storage.local import LocalVersionStore

REPO = "speech-assets"


def test_nothing_is_judged_while_nothing_is_in_production(tmp_path):
    with LocalVersionStore(tmp_path / "store") as store:
        store.create_repository(REPO)
        head = store.resolve(REPO, "main")
        assert judge_batch(store, REPO, "day-01", DriftConfig(), model_name="asr", confidence_utterances=10,
                           run_id="run") is None
        assert store.resolve(REPO, "main") == head


def test_the_asset_config_is_the_drift_config_plus_its_sample_size():
    assert DriftAssetConfig().to_domain() == DriftConfig()
    assert DriftAssetConfig(alpha=0.05, confidence_utterances=5).to_domain() == DriftConfig(alpha=0.05)
