"""The demo's first act, watched through the Dagster instance: every landing batch ingested (write-audit-publish),
its features built and the manifest rebuilt; then `train_and_deploy` queued and followed to the end (train,
evaluate, gate, register, build the bento, deploy); then one held-out utterance transcribed by the live service.

Each `print_*` prints a part of what the demo shows, from the materializations' metadata; the figures are the
platform's own, nothing is recomputed here.
"""

from __future__ import annotations

import subprocess
import time

from speech_assets.demo.processes import daemon_log, launch_job
from speech_assets.demo.progress import log
from speech_assets.demo.records import latest, latest_after, meta


def _check_daemon(daemon: subprocess.Popen) -> None:
    if daemon.poll() is not None:
        raise SystemExit(f"dagster-daemon exited with code {daemon.returncode}; see {daemon_log()}")


def wait_for_intake(
    batch_ids: list[str], expected_hashes: dict[str, str], timeout_s: float, daemon: subprocess.Popen
) -> dict:
    """Wait until every batch is published with its expected content hash, has features and is in a fresh
    manifest, and no run is queued or running; {"batches": batch -> raw_audio record, "manifest": record}."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    S = dg.DagsterRunStatus
    active_statuses = [S.QUEUED, S.NOT_STARTED, S.STARTING, S.STARTED]
    deadline = time.time() + timeout_s
    last_report = ""
    while time.time() < deadline:
        _check_daemon(daemon)
        done = {}
        for b in batch_ids:
            rec = latest(instance, "raw_audio", b)
            if rec is not None and meta(rec, "content_hash") == expected_hashes[b]:
                done[b] = rec
        featured = [b for b in done if latest_after(instance, "features", b, done[b])]
        manifest = latest(instance, "audio_manifest")
        manifest_fresh = manifest is not None and all(manifest.storage_id > r.storage_id for r in done.values())
        failed = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=5)
        recent_failures = [r for r in failed if r.create_timestamp.timestamp() > deadline - timeout_s]
        report = (
            f"batches ingested {len(done)}/{len(batch_ids)}; features {len(featured)}/{len(batch_ids)}; "
            f"manifest {'up to date' if manifest_fresh and len(done) == len(batch_ids) else 'pending'}"
        )
        if report != last_report:
            log(report)
            last_report = report
        if recent_failures:
            for r in recent_failures:
                log(f"run {r.dagster_run.run_id} FAILED (job {r.dagster_run.job_name}); see the Dagster UI")
            raise SystemExit(1)
        # Stopping the daemon kills the runs it launched: wait until none is queued or running.
        active = instance.get_run_records(dg.RunsFilter(statuses=active_statuses), limit=1)
        if len(done) == len(batch_ids) and len(featured) == len(batch_ids) and manifest_fresh and not active:
            return {"batches": done, "manifest": manifest}
        time.sleep(3)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for intake; daemon log: {daemon_log()}")


def launch_training(train_config: dict, eval_config: dict) -> str:
    """Queue `train_and_deploy` with these overrides of asr_checkpoint's and eval_report's config; its run id."""
    import uuid

    run_id = str(uuid.uuid4())
    run_config = {"ops": {"asr_checkpoint": {"config": train_config}, "eval_report": {"config": eval_config}}}
    launch_job("train_and_deploy", run_id, run_config)
    return run_id


def wait_for_run(run_id: str, timeout_s: float, daemon: subprocess.Popen):
    """Follow run `run_id` until it succeeds, fails or is cancelled; (the run, seconds it took to get there)."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    deadline, last = time.time() + timeout_s, None
    started = time.time()
    seen = 0
    while time.time() < deadline:
        _check_daemon(daemon)
        run = instance.get_run_by_id(run_id)
        status = run.status if run else None
        if status != last:
            log(f"train_and_deploy run {run_id[:8]}: {status.value if status else 'not yet visible'}")
            last = status
        seen = _print_progress(instance, run_id, seen)
        if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            return run, time.time() - started
        time.sleep(5)
    raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for run {run_id}")


PROGRESS_MARKERS = ("ETA", "took", "training on", "evaluating checkpoint", "word LM", "zero_shot")


def _print_progress(instance, run_id: str, seen: int) -> int:
    """The run's progress lines (training, fine-tuning, evaluation: `progress.ProgressMeter`'s, with an ETA) echoed
    to the terminal as they arrive; returns how many log entries have been read."""
    try:
        entries = instance.all_logs(run_id)
    except Exception:  # the run's log is not readable yet
        return seen
    for entry in entries[seen:]:
        message = entry.user_message or ""
        if not entry.is_dagster_event and any(m in message for m in PROGRESS_MARKERS):
            log(f"  {entry.step_key or ''}: {message}")
    return len(entries)


def print_intake_summary(result: dict) -> None:
    """One row per batch (accepted, quarantined, redacted, hours, published commit), then the manifest."""
    print()
    print("| batch | accepted | quarantined | redacted | audio h | published commit |")
    print("|---|---:|---:|---:|---:|---|")
    for b, rec in sorted(result["batches"].items()):
        print(
            f"| {b} | {meta(rec, 'accepted')} | {meta(rec, 'rejected')} | {meta(rec, 'redacted_utterances')} "
            f"| {meta(rec, 'audio_hours'):.3f} | {(meta(rec, 'commit_out') or '')[:12]} |"
        )
    m = result["manifest"]
    print()
    print(
        f"audio_manifest: {meta(m, 'utterances')} utterances, {meta(m, 'speakers')} speakers, "
        f"{meta(m, 'total_hours'):.3f} h; train/dev/test = {meta(m, 'train_utterances')}/"
        f"{meta(m, 'dev_utterances')}/{meta(m, 'test_utterances')}; main @ {(meta(m, 'commit_out') or '')[:12]}"
    )


def print_training_summary(run, seconds: float) -> None:
    """The checkpoint, the evaluation (with per-slice WER), the gate's decision and what was registered."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    ckpt, report, reg = (latest(instance, k) for k in ("asr_checkpoint", "eval_report", "registered_model"))
    print()
    if ckpt is not None:
        print(
            f"asr_checkpoint: {meta(ckpt, 'parameters'):,} parameters, {meta(ckpt, 'steps')} steps in "
            f"{meta(ckpt, 'train_minutes')} min, digest {meta(ckpt, 'checkpoint_digest')[:16]}"
        )
    if report is not None:
        print(
            f"eval_report: WER {meta(report, 'wer'):.2%} [{meta(report, 'wer_ci_low'):.2%}, "
            f"{meta(report, 'wer_ci_high'):.2%}], CER {meta(report, 'cer'):.2%}, ECE {meta(report, 'ece_before'):.3f} -> "
            f"{meta(report, 'ece_after'):.3f}, RTF {meta(report, 'rtf'):.3f}, on {meta(report, 'test_utterances')} test utterances"
        )
        print()
        print(_slice_table())
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
        print(f"registered_model: asr {meta(reg, 'version')} ({meta(reg, 'stage')})")
    else:
        print("registered_model: nothing registered (see the gate's decision in the Dagster UI)")
    log(f"training, evaluation, registration and deployment took {seconds / 60:.1f} min")


def _slice_table() -> str:
    """The stored report's own per-slice table (sizes, intervals, "too few to judge"), not a bare WER per slice."""
    import json

    from speech_assets.evaluation.report import EvalReport
    from speech_assets.storage.base import DEFAULT_BRANCH
    from speech_assets.storage.open import open_from_env
    from speech_assets.training.artifacts import EVALUATION_POINTER

    vs, repo = open_from_env()
    pointer = json.loads(vs.get_object(repo, DEFAULT_BRANCH, EVALUATION_POINTER))
    return EvalReport.from_json(vs.get_object(repo, DEFAULT_BRANCH, pointer["report"]).decode()).slices_markdown()


def print_serving_summary() -> bool:
    """Transcribe one held-out utterance through the live service, as a user would; True when it answered."""
    import json

    import dagster as dg

    from speech_assets.serving.probe import post_audio
    from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet
    from speech_assets.serving.targets import local_target_from_env
    from speech_assets.storage.base import DEFAULT_BRANCH
    from speech_assets.storage.open import open_from_env

    dep = latest(dg.DagsterInstance.get(), "asr_deployment")
    target = local_target_from_env()
    status = target.status()
    if dep is None or not status.ready:
        print("asr_deployment: no model is being served (see the run in the Dagster UI)")
        return False
    print(f"\nasr_deployment: serving asr {meta(dep, 'champion')} at {status.url} "
          f"(bento {status.bento_tag}, pid {status.pid}; {meta(dep, 'action')})")
    store, repo = open_from_env()
    probe = ProbeSet.from_json(store.get_object(repo, DEFAULT_BRANCH, PROBE_SET_PATH))
    if probe.items:
        (wav, text), = probe.load(store, repo)[:1]
        sample = target.home / "sample.wav"
        sample.write_bytes(wav)
        headers = {"X-API-Key": target.api_key} if target.api_key else {}
        code, body = post_audio(status.url, wav, headers, timeout_s=60)
        answer = json.loads(body) if code == 200 else {"error": body.decode(errors="replace")}
        print(f"a held-out test utterance ({probe.items[0].accent}, {probe.items[0].channel}) through the service:")
        print(f"  reference : {text}")
        print(f"  served    : {answer.get('text', answer)}  (confidence {answer.get('confidence', '-')}, "
              f"model {answer.get('model_version', '-')}, {answer.get('processing_s', '-')} s)")
        key = ' -H "X-API-Key: $ASR_API_KEY"' if target.api_key else ""
        print(f"try it:  curl -s{key} -F audio=@{sample} {status.url}/transcribe")
    return True
