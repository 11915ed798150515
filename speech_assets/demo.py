"""The demo cycle on the embedded defaults (what `make demo` runs).

1. Simulate a few days of speech traffic (espeak-ng voices as accents, sox channels) as landing batches;
   one batch also carries broken uploads so quarantine has something to show.
2. Start the real Dagster daemon: the intake sensor sees each batch, adds a partition and runs `raw_audio`
   (write-audit-publish into the local store); declarative automation then rebuilds `audio_manifest`.
3. Wait for every batch to be published, then queue `train_and_deploy` (train, evaluate, gate, register,
   build the bento, deploy): the first model ends up served by BentoML on 127.0.0.1, and stays up.
4. Transcribe a held-out test utterance through the live service, print the curl command, and where things are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from speech_assets.settings import DEFAULT_REPOSITORY, PROJECT_ROOT, data_home, landing_dir, local_store_dir

DEMO_DAYS = [
    # name, seed, accents, channels, utterances (None: --utterances)
    # day-00 is the backlog a team starts from: enough speech for a first model to meet the floors.
    ("day-00", 100, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", "bootstrap"),
    ("day-01", 101, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", None),
    ("day-02", 102, "us,gb,rp,scottish", "clean:0.7,noisy:0.2,reverb:0.1", None),
    ("day-03", 103, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", None),
]
# Speakers per accent of the demo population (the same people every day): enough that the speaker-disjoint
# test split holds several speakers per accent, so per-accent intervals mean something.
DEMO_SPEAKERS_PER_ACCENT = 40
DEMO_BOOTSTRAP_UTTERANCES = 5000
# The first model's training in the demo, and a retrain's (a warm start from the champion).
# Sized so both acts fit 20 minutes on 2 cores (measured in the README).
DEMO_FIRST_TRAINING = {"epochs": 3}
DEMO_FIRST_EVAL = {"baseline_utterances": 10}
DEMO_RETRAIN = {"warm_start": True, "epochs": 1, "max_steps": 150, "lr": 2e-3}


def _log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def add_broken_uploads(batch_dir: Path) -> int:
    """Append rows a real user upload could contain: each must be quarantined with its reason."""
    import json

    import numpy as np
    import soundfile as sf

    bad = batch_dir / "audio"
    (bad / "zero.wav").write_bytes(b"")
    good = sorted(bad.glob("*.wav"))[0].read_bytes()
    (bad / "truncated.wav").write_bytes(good[: len(good) // 2])
    (bad / "notaudio.wav").write_bytes(b"%PDF-1.4 this is not audio\n" * 20)
    t = np.arange(int(0.2 * 16000)) / 16000
    sf.write(bad / "stereo.wav", np.stack([np.sin(2e3 * t), np.sin(3e3 * t)], axis=1) * 0.3, 16000)
    rows = [
        {"audio_filepath": "audio/zero.wav", "text": "an empty upload", "speaker": "upload-1"},
        {"audio_filepath": "audio/truncated.wav", "text": "a truncated upload", "speaker": "upload-1"},
        {"audio_filepath": "audio/notaudio.wav", "text": "not audio at all", "speaker": "upload-1"},
        {"audio_filepath": "audio/stereo.wav", "text": "a stereo upload", "speaker": "upload-1"},
        {"audio_filepath": "../../etc/passwd", "text": "a path that climbs out", "speaker": "upload-1"},
        {"audio_filepath": "audio/missing.wav", "text": "a file that is not there", "speaker": "upload-1"},
    ]
    with open(batch_dir / "manifest.jsonl", "ab") as f:
        for row in rows:
            f.write((json.dumps(row) + "\n").encode())
        f.write(b'{"audio_filepath": "audio/zero.wav", "text": "caf\xe9 latin-1 bytes"}\n')
    return len(rows) + 1


def generate_landing(utterances: int, workers: int, bootstrap_utterances: int = 0, days=DEMO_DAYS) -> list[str]:
    """Simulate `days` (name, seed, accents, channels, size) and drop each into the landing zone."""
    from speech_assets.audio.simulate import SimulationConfig, generate_batch

    landing = landing_dir()
    landing.mkdir(parents=True, exist_ok=True)
    staging = data_home() / "generated"
    names = []
    for name, seed, accents, channels, size in days:
        n = bootstrap_utterances if size == "bootstrap" else (utterances if size is None else size)
        if n <= 0:
            continue
        names.append(name)
        if (landing / name / "_READY").exists():
            _log(f"{name}: already in the landing zone")
            continue
        out = staging / name
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        config = SimulationConfig(
            n_utterances=n,
            seed=seed,
            speaker_seed=1,  # the same speaker population every day
            speakers_per_accent=DEMO_SPEAKERS_PER_ACCENT,
            accents=accents.split(","),
            channels={k: float(v) for k, v in (c.split(":") for c in channels.split(","))},
            workers=workers,
        )
        generate_batch(out, config)
        extra = add_broken_uploads(out) if name == "day-02" else 0
        _log(f"{name}: simulated {n} utterances in {time.perf_counter() - t0:.1f}s" + (f" (+{extra} broken uploads)" if extra else ""))
        # A rename is atomic: the sensor never sees a half-copied batch.
        shutil.rmtree(landing / name, ignore_errors=True)
        os.replace(out, landing / name)
    return names


def _latest(instance, key: str, partition: str | None = None):
    import dagster as dg

    flt = dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(flt, limit=1).records
    return records[0] if records else None


def _latest_after(instance, key: str, partition: str, after_record):
    rec = _latest(instance, key, partition)
    return rec if rec is not None and rec.storage_id > after_record.storage_id else None


def _meta(record, name: str):
    entry = record.asset_materialization.metadata.get(name)
    return None if entry is None else entry.value


def wait_for_intake(
    batch_ids: list[str], expected_hashes: dict[str, str], timeout_s: float, daemon: subprocess.Popen
) -> dict:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    S = dg.DagsterRunStatus
    active_statuses = [S.QUEUED, S.NOT_STARTED, S.STARTING, S.STARTED]
    deadline = time.time() + timeout_s
    last_report = ""
    while time.time() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"dagster-daemon exited with code {daemon.returncode}; see {_daemon_log()}")
        done = {}
        for b in batch_ids:
            rec = _latest(instance, "raw_audio", b)
            if rec is not None and _meta(rec, "content_hash") == expected_hashes[b]:
                done[b] = rec
        featured = [b for b in done if _latest_after(instance, "features", b, done[b])]
        manifest = _latest(instance, "audio_manifest")
        manifest_fresh = manifest is not None and all(manifest.storage_id > r.storage_id for r in done.values())
        failed = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=5)
        recent_failures = [r for r in failed if r.create_timestamp.timestamp() > deadline - timeout_s]
        report = (
            f"batches ingested {len(done)}/{len(batch_ids)}; features {len(featured)}/{len(batch_ids)}; "
            f"manifest {'up to date' if manifest_fresh and len(done) == len(batch_ids) else 'pending'}"
        )
        if report != last_report:
            _log(report)
            last_report = report
        if recent_failures:
            for r in recent_failures:
                _log(f"run {r.dagster_run.run_id} FAILED (job {r.dagster_run.job_name}); see the Dagster UI")
            raise SystemExit(1)
        # Stopping the daemon kills the runs it launched: wait until none is queued or running.
        active = instance.get_run_records(dg.RunsFilter(statuses=active_statuses), limit=1)
        if len(done) == len(batch_ids) and len(featured) == len(batch_ids) and manifest_fresh and not active:
            return {"batches": done, "manifest": manifest}
        time.sleep(3)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for intake; daemon log: {_daemon_log()}")


def launch_training(train_config: dict, eval_config: dict) -> str:
    """Queue the `train_and_deploy` job exactly as an operator would (`dagster job launch`); the daemon runs it."""
    import json
    import uuid

    run_id = str(uuid.uuid4())
    run_config = {"ops": {"asr_checkpoint": {"config": train_config}, "eval_report": {"config": eval_config}}}
    subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")), "job", "launch", "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "-j", "train_and_deploy", "--run-id", run_id, "--config-json", json.dumps(run_config),
        ],
        cwd=PROJECT_ROOT, check=True, capture_output=True,
    )
    return run_id


def wait_for_run(run_id: str, timeout_s: float, daemon: subprocess.Popen):
    import dagster as dg

    instance = dg.DagsterInstance.get()
    deadline, last = time.time() + timeout_s, None
    started = time.time()
    while time.time() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"dagster-daemon exited with code {daemon.returncode}; see {_daemon_log()}")
        run = instance.get_run_by_id(run_id)
        status = run.status if run else None
        if status != last:
            _log(f"train_and_deploy run {run_id[:8]}: {status.value if status else 'not yet visible'}")
            last = status
        if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            return run, time.time() - started
        time.sleep(5)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for run {run_id}")


def print_training_summary(run, seconds: float) -> None:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    ckpt, report, reg = (_latest(instance, k) for k in ("asr_checkpoint", "eval_report", "registered_model"))
    print()
    if ckpt is not None:
        print(
            f"asr_checkpoint: {_meta(ckpt, 'parameters'):,} parameters, {_meta(ckpt, 'steps')} steps in "
            f"{_meta(ckpt, 'train_minutes')} min, digest {_meta(ckpt, 'checkpoint_digest')[:16]}"
        )
    if report is not None:
        print(
            f"eval_report: WER {_meta(report, 'wer'):.2%} [{_meta(report, 'wer_ci_low'):.2%}, "
            f"{_meta(report, 'wer_ci_high'):.2%}], CER {_meta(report, 'cer'):.2%}, ECE {_meta(report, 'ece_before'):.3f} -> "
            f"{_meta(report, 'ece_after'):.3f}, RTF {_meta(report, 'rtf'):.3f}, on {_meta(report, 'test_utterances')} test utterances"
        )
        print()
        print("| slice | WER |")
        print("|---|---:|")
        for key, value in sorted(report.asset_materialization.metadata.items()):
            if key.startswith("wer/"):
                print(f"| {key[4:]} | {value.value:.2%} |")
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("eval_report"), "promotion_gate"), limit=1
    )
    if checks:
        evaluation = checks[0].evaluation
        if evaluation is not None:
            failed = evaluation.metadata.get("failed_rules")
            print(f"\npromotion_gate: {'passed' if evaluation.passed else 'FAILED'}"
                  + (f" (failed: {failed.value})" if failed and not evaluation.passed else ""))
    if run.status == dg.DagsterRunStatus.SUCCESS and reg is not None:
        print(f"registered_model: asr {_meta(reg, 'version')} ({_meta(reg, 'stage')})")
    else:
        print("registered_model: nothing registered (see the gate's decision in the Dagster UI)")
    _log(f"training, evaluation, registration and deployment took {seconds / 60:.1f} min")


def print_serving_summary() -> bool:
    """Transcribe one held-out utterance through the live service, as a user would; True when it answered."""
    import json

    import dagster as dg

    from speech_assets.defs.serving.resources import serving_from_env
    from speech_assets.defs.storage.resources import version_store_from_env
    from speech_assets.serving.probe import post_audio
    from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet

    dep = _latest(dg.DagsterInstance.get(), "asr_deployment")
    serving = serving_from_env()
    status = serving.target().status()
    if dep is None or not status.ready:
        print("asr_deployment: no model is being served (see the run in the Dagster UI)")
        return False
    print(f"\nasr_deployment: serving asr {_meta(dep, 'champion')} at {status.url} "
          f"(bento {status.bento_tag}, pid {status.pid}; {_meta(dep, 'action')})")
    resource = version_store_from_env()
    store, repo = resource.open(), resource.repository
    probe = ProbeSet.from_json(store.get_object(repo, "main", PROBE_SET_PATH))
    if probe.items:
        (wav, text), = probe.load(store, repo)[:1]
        sample = serving.home_dir / "sample.wav"
        sample.write_bytes(wav)
        headers = {"X-API-Key": serving.api_key} if serving.api_key else {}
        code, body = post_audio(status.url, wav, headers, timeout_s=60)
        answer = json.loads(body) if code == 200 else {"error": body.decode(errors="replace")}
        print(f"a held-out test utterance ({probe.items[0].accent}, {probe.items[0].channel}) through the service:")
        print(f"  reference : {text}")
        print(f"  served    : {answer.get('text', answer)}  (confidence {answer.get('confidence', '-')}, "
              f"model {answer.get('model_version', '-')}, {answer.get('processing_s', '-')} s)")
        key = ' -H "X-API-Key: $ASR_API_KEY"' if serving.api_key else ""
        print(f"try it:  curl -s{key} -F audio=@{sample} {status.url}/transcribe")
    return True


def _daemon_log() -> Path:
    # not under DAGSTER_HOME/logs: Dagster manages that folder itself
    return Path(os.environ["DAGSTER_HOME"]) / "daemon.log"


def start_daemon() -> subprocess.Popen:
    log = _daemon_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    _log(f"starting dagster-daemon (log: {log})")
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
        cwd=PROJECT_ROOT,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def print_summary(result: dict) -> None:
    print()
    print("| batch | accepted | quarantined | redacted | audio h | published commit |")
    print("|---|---:|---:|---:|---:|---|")
    for b, rec in sorted(result["batches"].items()):
        print(
            f"| {b} | {_meta(rec, 'accepted')} | {_meta(rec, 'rejected')} | {_meta(rec, 'redacted_utterances')} "
            f"| {_meta(rec, 'audio_hours'):.3f} | {(_meta(rec, 'commit_out') or '')[:12]} |"
        )
    m = result["manifest"]
    print()
    print(
        f"audio_manifest: {_meta(m, 'utterances')} utterances, {_meta(m, 'speakers')} speakers, "
        f"{_meta(m, 'total_hours'):.3f} h; train/dev/test = {_meta(m, 'train_utterances')}/"
        f"{_meta(m, 'dev_utterances')}/{_meta(m, 'test_utterances')}; main @ {(_meta(m, 'commit_out') or '')[:12]}"
    )


def print_operations_summary() -> None:
    """What the audit trail says now: what happened, that it is intact, and which model serves on what data."""
    from collections import Counter

    from speech_assets.defs.storage.resources import version_store_from_env
    from speech_assets.governance.audit import timeline, verify_append_only
    from speech_assets.storage.audit_log import utc_now
    from speech_assets.governance.served import served_at
    from speech_assets.training.artifacts import MODEL_NAME

    resource = version_store_from_env()
    vs, repo = resource.open(), resource.repository
    counts = Counter(f"{e.action}" for e in timeline(vs, repo))
    check = verify_append_only(vs, repo)
    print("\n## Operations\n")
    print("audit trail: " + ", ".join(f"{action} {n}" for action, n in sorted(counts.items())))
    print(f"append-only over main's history: {'OK' if check.ok else 'BROKEN'} "
          f"({check.commits_checked} commits, {check.audit_objects} audit objects)")
    now = utc_now()
    print(f"\n$ python -m speech_assets audit served-at {now.isoformat(timespec='seconds')}")
    print(served_at(vs, repo, MODEL_NAME, now).text())


def print_where() -> None:
    home = os.environ["DAGSTER_HOME"]
    print(
        f"""
Where things are:
  landing zone      {landing_dir()}
  local store       {local_store_dir()}  (repository '{DEFAULT_REPOSITORY}', branch main)
  Dagster home      {home}
Inspect the store:  .venv/bin/python -m speech_assets store log
                    .venv/bin/python -m speech_assets store ls main metadata/
The model registry: .venv/bin/python -m speech_assets models list asr   (models audit asr: every decision)
The service:        .venv/bin/python -m speech_assets serving status     (serving stop: stop it)
The audit trail:    .venv/bin/python -m speech_assets audit log -v        (audit served-at <ISO time>: which
                    model served then, trained on what data; audit verify: append-only + hash chains)
Privacy:            .venv/bin/python -m speech_assets erase --speaker ID --who NAME --why TEXT [--dry-run]
The ops dashboard:  {data_home() / "reports" / "ops_dashboard.html"}   (runbook: docs/runbook.md)
The Dagster UI (assets, metadata, sensors' tick logs): http://127.0.0.1:3000 while the demo's processes run;
  make stop         # stops the UI, the daemon and the service
  make ui           # = DAGSTER_HOME={home} .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000
"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="speech_assets demo", description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=150, help="utterances per simulated day")
    parser.add_argument(
        "--bootstrap-utterances", type=int, default=DEMO_BOOTSTRAP_UTTERANCES,
        help="utterances in day-00, the backlog the first model trains on (0: none)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--skip-training", action="store_true", help="stop after intake and features")
    parser.add_argument("--train-config", default="{}", help="JSON overrides for asr_checkpoint's TrainingConfig")
    parser.add_argument("--eval-config", default="{}", help="JSON overrides for eval_report's EvalConfig")
    parser.add_argument("--retrain-config", default="{}",
                        help="JSON overrides for the retrain's TrainingConfig (default: warm start, 1 epoch)")
    parser.add_argument("--story-utterances", type=int, default=1200,
                        help="utterances on the drifted day of act two (0: no act two)")
    parser.add_argument("--stop-at-end", action="store_true",
                        help="stop the daemon and the service at the end instead of leaving them (and the UI) running")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if not (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml")

    from speech_assets.intake.landing import scan_landing

    started = time.perf_counter()
    names = generate_landing(args.utterances, args.workers, args.bootstrap_utterances)
    batches = {b.batch_id: b for b in scan_landing(landing_dir()) if b.path.name in names}
    hashes = {bid: b.content_hash() for bid, b in batches.items()}
    # Create the instance's SQLite schema here, before the daemon's threads race to do it themselves.
    import dagster as dg

    dg.DagsterInstance.get().get_runs(limit=1)
    configure_loop(args)
    daemon = start_daemon()
    keep = False
    try:
        result = wait_for_intake(sorted(batches), hashes, args.timeout, daemon)
        print_summary(result)
        if not args.skip_training:
            import json

            _log("launching train_and_deploy (asr_checkpoint → eval_report → promotion_gate → registered_model → "
                 "asr_bento → asr_deployment)")
            run_id = launch_training({**DEMO_FIRST_TRAINING, **json.loads(args.train_config)},
                                     {**DEMO_FIRST_EVAL, **json.loads(args.eval_config)})
            run, seconds = wait_for_run(run_id, args.timeout * 2, daemon)
            print_training_summary(run, seconds)
            serving = print_serving_summary()
            if serving and args.story_utterances > 0:
                from speech_assets.demo_story import print_story_summary, run_story

                story = run_story(daemon, args.story_utterances, args.workers, args.timeout * 3)
                print_story_summary(story)
            if serving:
                print_operations_summary()
        keep = not args.stop_at_end
    finally:
        if keep:
            leave_running(daemon)
        else:
            stop(daemon)
            if args.stop_at_end:
                from speech_assets.defs.serving.resources import serving_from_env

                serving_from_env().target().stop()
    print_where()
    _log(f"demo finished in {time.perf_counter() - started:.0f}s")
    return 0


def configure_loop(args) -> None:
    """The closed loop's settings for the demo, passed to the daemon through its environment.

    Sensors tick every 10 s (production: 30 s) so the story does not wait on them; a retrain fine-tunes the
    champion (warm start) for one epoch over everything on main, evaluated like any challenger.
    """
    import json

    os.environ.setdefault("SPEECH_ASSETS_CANARY_INTERVAL_S", "10")
    os.environ.setdefault("SPEECH_ASSETS_RETRAIN_INTERVAL_S", "10")
    retrain_train = {**DEMO_RETRAIN, **json.loads(args.retrain_config)}
    retrain_eval = {**json.loads(args.eval_config), "baseline_utterances": 0}  # the baseline was measured once
    os.environ["SPEECH_ASSETS_RETRAIN"] = json.dumps({
        "cooldown_minutes": 0, "min_new_utterances": 10**9, "train_config_json": retrain_train,
        # after an erasure, the retrain starts from scratch: the first model's budget, not the fine-tune's
        "scratch_train_config_json": {**DEMO_FIRST_TRAINING, **json.loads(args.train_config)},
        "eval_config_json": retrain_eval,
    })


def _pid_file() -> Path:
    return Path(os.environ["DAGSTER_HOME"]) / "demo_processes.json"


def leave_running(daemon: subprocess.Popen) -> None:
    """Keep the daemon, start the Dagster UI (both in their own sessions): the user inspects what happened."""
    import json

    log = Path(os.environ["DAGSTER_HOME"]) / "webserver.log"
    web = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(PROJECT_ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", "3000"],
        cwd=PROJECT_ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    _pid_file().write_text(json.dumps({"daemon": daemon.pid, "webserver": web.pid}))
    print(f"""
Left running: the Dagster UI at http://127.0.0.1:3000 (pid {web.pid}), dagster-daemon (pid {daemon.pid}: the
sensors keep watching), and the ASR service. Stop them all with:  make stop""")


def stop_all() -> int:
    """`make stop`: the UI and the daemon the demo left running, and the local service."""
    import json

    from speech_assets.defs.serving.resources import serving_from_env

    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))
    if _pid_file().exists():
        for name, pid in json.loads(_pid_file().read_text()).items():
            try:
                os.killpg(pid, signal.SIGTERM)
                print(f"stopped {name} (pid {pid})")
            except ProcessLookupError:
                pass
        _pid_file().unlink()
    serving_from_env().target().stop()
    print("stopped the ASR service")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
