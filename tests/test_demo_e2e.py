"""The README's main job, end to end with the real Dagster daemon, on a reduced story in a temp home.

Act one: intake (with quarantined uploads), features, a first model trained, gated, registered and served.
Act two: a usual day, then a new accent on the telephone; the daemon's sensors alone must detect the drift,
retrain, pass the gate, roll the challenger out as a canary and promote it; the served version changes and the
drifted slice's WER improves. Smaller corpus and model than the demo (this checks the loop, not the accuracy).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FIRST_TRAINING = {"epochs": 12, "hidden": 96, "conv_channels": 8, "layers": 1, "batch_size": 16, "lm_order": 2}
RETRAIN = {"warm_start": True, "epochs": 4, "hidden": 96, "conv_channels": 8, "layers": 1, "batch_size": 16,
           "lm_order": 2, "lr": 3e-3}
# Lenient floors and tolerances: a model trained for a minute is far from the demo's; the story's order of
# events and the drifted slice's improvement are what is checked here.
EVAL = {"min_utterances": 1, "min_speakers": 1, "bootstrap_resamples": 200, "baseline_utterances": 0,
        "rtf_utterances": 2, "wer_floor": 5.0, "slice_wer_floor": 5.0, "max_ece": 1.0, "wer_tolerance": 0.5,
        "slice_wer_tolerance": 0.5, "ece_tolerance": 1.0}


@pytest.mark.slow
def test_demo_story_runs_the_closed_loop_through_the_daemon(tmp_path, monkeypatch):
    env = dict(os.environ)
    env.update(SPEECH_ASSETS_HOME=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "dagster_home"))
    for name in ("LAKEFS_ENDPOINT", "SPEECH_ASSETS_LANDING", "SPEECH_ASSETS_STORE", "ASR_API_KEY"):
        env.pop(name, None)
    try:
        out = _run_demo(env)
        _check(out, env, tmp_path, monkeypatch)
    finally:  # whatever happened, nothing is left running
        subprocess.run([sys.executable, "-m", "speech_assets", "stop"], cwd=ROOT, env=env, timeout=120)


def _run_demo(env) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "speech_assets", "demo", "--backend", "ctc", "--utterances", "12", "--bootstrap-utterances", "480",
         "--story-utterances", "240", "--timeout", "600", "--stop-at-end",
         "--train-config", json.dumps(FIRST_TRAINING), "--retrain-config", json.dumps(RETRAIN),
         "--eval-config", json.dumps(EVAL)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def _check(out: str, env, tmp_path, monkeypatch) -> None:
    # act one
    assert "| day-02 | 12 | 7 |" in out  # the broken uploads were quarantined, not dropped
    assert "promotion_gate: passed" in out and "registered_model: asr 1.0.0 (production)" in out
    assert "asr_deployment: serving asr 1.0.0 at http://127.0.0.1:" in out and "  served    : " in out
    # act two, in this order
    steps = [
        r"drift_report\[day-04\]: no drift",
        r"drift_report\[day-05\]: DRIFT",
        r"retrain_sensor requested train_and_deploy \(\w+\): drift in day-05",
        r"retrain run \w+: SUCCESS",
        r"1\.1\.0 registered as the canary and deployed at 10 %",
        r"canary_sensor promoted 1\.1\.0",
    ]
    positions = []
    for step in steps:
        match = re.search(step, out)
        assert match, f"missing step {step!r}:\n{out[-5000:]}"
        positions.append(match.start())
    assert positions == sorted(positions), "the closed loop's steps happened out of order"
    traffic = re.search(r"simulated users during the rollout: (\d+) requests, (\d+) failed", out)
    assert traffic and int(traffic[1]) > 20 and int(traffic[2]) == 0, out[-3000:]
    # the canary was sized when 1.1.0 entered, and promoted only once it had served its planned live sample
    plan = re.search(r"canary sample plan for 1\.1\.0: .*?(\d+) live requests without a failure", out)
    promoted = re.search(r"\| promote \| [\d.]+ % \| (\d+) of (\d+) \|", out)
    assert plan and promoted, out[-3000:]
    assert int(promoted[2]) == int(plan[1]) and int(promoted[1]) >= int(promoted[2])

    # the registry and the service agree: 1.1.0 serves, 1.0.0 is archived, every decision is in the audit trail
    from speech_assets.registry.registry import ModelRegistry, Stage
    from speech_assets.storage.local import LocalVersionStore

    store = LocalVersionStore(tmp_path / "data" / "store")
    registry = ModelRegistry(store, "speech-assets")
    assert registry.production("asr").version == "1.1.0" and registry.get("asr", "1.0.0").stage is Stage.ARCHIVED
    canary_events = [e for e in registry.audit_log("asr") if e.actor == "canary_sensor" and e.evidence]
    assert [e.evidence["decision"]["action"] for e in canary_events][-1] == "promote"
    status = subprocess.run([sys.executable, "-m", "speech_assets", "serving", "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "| champion | 1.1.0 |" in status.stdout, status.stdout + status.stderr

    # the drifted slices improved: the retrain's paired per-slice comparison with the champion
    from speech_assets.evaluation.compare import before_after
    from speech_assets.training.artifacts import EVALUATION_POINTER, read_parquet_rows

    pointer = json.loads(store.get_object("speech-assets", "main", EVALUATION_POINTER))
    rows = read_parquet_rows(store.get_object("speech-assets", "main", pointer["rows"]))
    champ = read_parquet_rows(store.get_object("speech-assets", "main", pointer["champion_rows"]))
    table = {r.label: r for r in before_after(rows, champ, columns=("accent", "channel"))}
    drifted = [table[k] for k in ("accent=caribbean", "channel=telephone") if k in table]
    assert drifted and all(r.challenger_wer < r.champion_wer for r in drifted), [(r.label, r.champion_wer, r.challenger_wer) for r in drifted]

    import dagster as dg

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        statuses = {r.dagster_run.status for r in instance.get_run_records()}
    assert dg.DagsterRunStatus.FAILURE not in statuses
