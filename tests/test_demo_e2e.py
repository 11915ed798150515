"""The README's main job, end to end with the real Dagster daemon, on a small corpus in a temp home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_runs_intake_features_training_and_registration_through_the_daemon(tmp_path, monkeypatch):
    env = dict(os.environ)
    env.update(
        SPEECH_ASSETS_HOME=str(tmp_path / "data"),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
    )
    for name in ("LAKEFS_ENDPOINT", "SPEECH_ASSETS_LANDING", "SPEECH_ASSETS_STORE", "ASR_API_KEY"):
        env.pop(name, None)
    try:
        _run_and_check(env, tmp_path, monkeypatch)
    finally:  # the demo leaves the service running for the user; the test must not
        subprocess.run([sys.executable, "-m", "speech_assets", "serving", "stop"], cwd=ROOT, env=env, timeout=120)


def _run_and_check(env, tmp_path, monkeypatch):
    proc = subprocess.run(
        [
            sys.executable, "-m", "speech_assets", "demo", "--utterances", "12", "--bootstrap-utterances", "0", "--timeout", "400",
            # A few training steps and a lenient gate: this checks the daemon-driven wiring end to end, not the
            # model's quality (bench/train_budget.py measures that).
            "--train-config", json.dumps({"epochs": 1, "max_steps": 3, "hidden": 32, "layers": 1, "batch_size": 8,
                                           "lm_order": 2}),
            "--eval-config", json.dumps({"min_utterances": 1, "min_speakers": 1, "bootstrap_resamples": 100,
                                          "baseline_utterances": 0, "rtf_utterances": 2, "wer_floor": 5.0,
                                          "slice_wer_floor": 5.0, "max_ece": 1.0}),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "| day-01 | 12 | 0 |" in out
    assert "| day-02 | 12 | 7 |" in out  # the broken uploads were quarantined, not dropped
    assert "audio_manifest: 36 utterances" in out
    assert "promotion_gate: passed" in out
    assert "registered_model: asr 1.0.0 (production)" in out
    # ... and it is served: a held-out utterance went through the live BentoML service
    assert "asr_deployment: serving asr 1.0.0 at http://127.0.0.1:" in out
    assert "  served    : " in out and "model 1.0.0" in out
    assert "curl -s -F audio=@" in out
    status = subprocess.run([sys.executable, "-m", "speech_assets", "serving", "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "| champion | 1.0.0 |" in status.stdout, status.stdout + status.stderr

    from speech_assets.storage.local import LocalVersionStore

    store = LocalVersionStore(tmp_path / "data" / "store")
    paths = {o.path for o in store.list_objects("speech-assets", "main")}
    assert {"metadata/day-01.parquet", "metadata/day-02.parquet", "metadata/day-03.parquet"} <= paths
    assert "manifest/audio_manifest.parquet" in paths
    assert "quarantine/day-02/rejections.parquet" in paths
    # Every run the daemon launched succeeded (none killed when the demo stopped the daemon).
    import dagster as dg

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        statuses = {r.dagster_run.status for r in instance.get_run_records()}
    assert statuses == {dg.DagsterRunStatus.SUCCESS}
