"""The demo's second act: the closed loop, on its own, watched from outside.

After the first model serves, one more day of the usual traffic arrives, then a day on which a new accent calls
in over the telephone.  Nothing here triggers anything: the daemon's sensors do (intake, drift_report,
retrain_sensor, canary_sensor).  This module drops the batches, sends simulated users' requests to the service
while a canary is out, watches each step happen, and prints what happened, with the numbers.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime

from speech_assets.demo.landing import generate_landing
from speech_assets.demo.progress import log
from speech_assets.demo.records import metadata, since

# name, seed, accents, channels, utterances (None: the drifted day's size)
STORY_DAYS = [
    ("day-04", 104, "us,gb,rp,scottish", "clean:0.8,noisy:0.2", 300),
    ("day-05", 105, "us,gb,caribbean", "clean:0.4,telephone:0.6", None),
]
DRIFTED_DAY = "day-05"
# The drifted slices the retrain should fix (what the summary highlights).
DRIFTED_SLICES = ("accent=caribbean", "channel=telephone")


@dataclass
class Story:
    started: float
    champion: str
    drift: dict = field(default_factory=dict)  # batch -> drift_report metadata
    drift_at: float | None = None
    retrain_run: str | None = None
    retrain_reason: str = ""
    retrain_requested_at: float | None = None
    retrain_finished_at: float | None = None
    retrain_status: str | None = None
    challenger: str | None = None
    canary_at: float | None = None
    outcome: str | None = None  # "promoted" | "rolled back" | "not deployed"
    outcome_at: float | None = None
    gate: str = ""
    traffic: dict = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.events.append((time.time(), what))
        log(what)


def run_story(daemon: subprocess.Popen, drifted_utterances: int, workers: int, timeout_s: float) -> Story:
    import dagster as dg

    from speech_assets.registry.registry import ModelRegistry, Stage
    from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet
    from speech_assets.serving.targets import local_target_from_env
    from speech_assets.serving.traffic import Traffic
    from speech_assets.storage.base import DEFAULT_BRANCH
    from speech_assets.storage.open import open_from_env
    from speech_assets.training.artifacts import MODEL_NAME

    vs, repo = open_from_env()
    registry = ModelRegistry(vs, repo)
    instance = dg.DagsterInstance.get()
    champion = registry.production(MODEL_NAME)
    if champion is None:
        raise SystemExit("the story needs a serving model: run the first act (training) first")
    story = Story(time.time(), champion.version)
    story.note(f"act two: {champion.version} serves; one more usual day, then a new accent on the telephone")
    generate_landing(0, workers, days=[(n, s, a, c, drifted_utterances if size is None else size)
                                       for n, s, a, c, size in STORY_DAYS])
    story.note("day-04 and day-05 dropped into the landing zone; from here on the daemon's sensors act alone")

    traffic = None
    deadline = time.time() + timeout_s
    try:
        while time.time() < deadline:
            if daemon.poll() is not None:
                raise SystemExit(f"dagster-daemon exited with code {daemon.returncode}")
            for name, *_ in STORY_DAYS:
                if name not in story.drift:
                    recs = since(instance, "drift_report", name, story.started)
                    if recs and metadata(recs[0]).get("status") == "judged":
                        md = story.drift[name] = metadata(recs[0])
                        story.note(f"drift_report[{name}]: {'DRIFT' if md['drifted'] else 'no drift'} "
                                   f"(score {md['drift_score']:.2f}; fired: {md['fired']})")
                        if md["drifted"] and story.drift_at is None:
                            story.drift_at = recs[0].timestamp
            if story.retrain_run is None:
                runs = instance.get_run_records(dg.RunsFilter(job_name="train_and_deploy",
                                                              tags={"speech_assets/trigger": "drift"}), limit=1)
                if runs and runs[0].create_timestamp.timestamp() > story.started:
                    run = runs[0].dagster_run
                    story.retrain_run, story.retrain_requested_at = run.run_id, runs[0].create_timestamp.timestamp()
                    story.retrain_reason = run.tags.get("speech_assets/reason", "")
                    story.note(f"retrain_sensor requested train_and_deploy ({run.run_id[:8]}): {story.retrain_reason}")
            elif story.retrain_status is None:
                run = instance.get_run_by_id(story.retrain_run)
                if run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                    story.retrain_status, story.retrain_finished_at = run.status.value, time.time()
                    story.gate = _gate_markdown(instance)
                    story.note(f"retrain run {run.run_id[:8]}: {run.status.value}")
                    if run.status != dg.DagsterRunStatus.SUCCESS:
                        story.outcome, story.outcome_at = "not deployed", time.time()
                        story.note("the challenger was not deployed (the gate's decision is below and in the UI); "
                                   f"{champion.version} keeps serving")
                        break
            if story.retrain_status == "SUCCESS":
                canary = registry.canary(MODEL_NAME)
                prod = registry.production(MODEL_NAME)
                if story.challenger is None and canary is not None:
                    story.challenger, story.canary_at = canary.version, time.time()
                    story.note(f"{canary.version} registered as the canary and deployed at 10 %; simulated users start")
                    target = local_target_from_env()
                    status = target.status()
                    probe = ProbeSet.from_json(vs.get_object(repo, DEFAULT_BRANCH, PROBE_SET_PATH))
                    wavs = [w for w, _ in probe.load(vs, repo)]
                    traffic = Traffic(status.url, wavs, clients=2, api_key=target.api_key).start()
                if story.challenger is not None:
                    stage = registry.get(MODEL_NAME, story.challenger).stage
                    if prod is not None and prod.version == story.challenger:
                        story.outcome, story.outcome_at = "promoted", time.time()
                        story.note(f"canary_sensor promoted {story.challenger}: it now serves all traffic")
                        break
                    if stage is Stage.ARCHIVED:
                        story.outcome, story.outcome_at = "rolled back", time.time()
                        story.note(f"canary_sensor rolled {story.challenger} back; {champion.version} serves")
                        break
            time.sleep(3)
        else:
            raise SystemExit(f"the story did not finish within {timeout_s:.0f}s; see the Dagster UI")
    finally:
        if traffic is not None:
            time.sleep(2)  # a few requests after the switch, to show who answers now
            traffic.stop()
            story.traffic = {"sent": traffic.sent, "failed": len(traffic.failed),
                             "by_version": dict(traffic.by_version), "failures": traffic.failed[:3]}
    return story


def _gate_markdown(instance) -> str:
    import dagster as dg

    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("eval_report"), "promotion_gate"), limit=1)
    if checks and checks[0].evaluation is not None:
        ev = checks[0].evaluation
        decision = ev.metadata.get("decision")
        return ("passed" if ev.passed else "FAILED") + ("\n\n" + decision.value if decision else "")
    return "not evaluated"


def _minutes(a: float | None, b: float | None) -> str:
    return f"{(b - a) / 60:.1f} min" if a and b else "-"


def print_story_summary(story: Story) -> None:
    from speech_assets.evaluation.compare import before_after, before_after_markdown
    from speech_assets.registry.registry import ModelRegistry
    from speech_assets.storage.base import DEFAULT_BRANCH
    from speech_assets.storage.open import open_from_env
    from speech_assets.training.artifacts import EVALUATION_POINTER, MODEL_NAME, read_parquet_rows

    vs, repo = open_from_env()
    registry = ModelRegistry(vs, repo)
    print("\n## The closed loop, as it happened\n")
    print("| batch | drift score | drifted | signals that fired |")
    print("|---|---:|---|---|")
    for name, md in story.drift.items():
        print(f"| {name} | {md['drift_score']:.2f} | {'yes' if md['drifted'] else 'no'} | {md['fired']} |")

    pointer = json.loads(vs.get_object(repo, DEFAULT_BRANCH, EVALUATION_POINTER))
    if story.challenger and pointer.get("champion_rows"):
        rows = read_parquet_rows(vs.get_object(repo, DEFAULT_BRANCH, pointer["rows"]))
        champ = read_parquet_rows(vs.get_object(repo, DEFAULT_BRANCH, pointer["champion_rows"]))
        policy = pointer.get("policy") or {}  # the gate's own minimum slice size: the same "too few to judge"
        table = before_after(rows, champ, columns=("accent", "channel"),
                             min_utterances=int(policy.get("min_utterances", 30)),
                             min_speakers=int(policy.get("min_speakers", 3)))
        print(f"\nPer-slice WER on the same test utterances, {story.champion} (before) vs {story.challenger} (after):\n")
        print(before_after_markdown(table, story.champion, story.challenger))
    if pointer.get("drift"):
        from speech_assets.evaluation.promotion import drift_markdown
        from speech_assets.evaluation.run import promotion_decision

        _, decision = promotion_decision(vs, repo)
        print(f"\nWhere the drift is: {pointer['drift']['batch_id']}'s drift test set (its new speakers held out of "
              f"training: {pointer['drift'].get('note', '')}), {story.champion} (before) -> the challenger (after):\n")
        print(drift_markdown(decision) or "no drift evidence")
    elif story.gate:
        print(f"\npromotion_gate: {story.gate}")

    print("\n| step | when | |")
    print("|---|---|---|")
    t0 = story.started
    for ts, what in story.events:
        print(f"| +{(ts - t0) / 60:.1f} min | {datetime.fromtimestamp(ts).strftime('%H:%M:%S')} | {what} |")
    versions = {v.version: v for v in registry.list_versions(MODEL_NAME)}
    print("\n| model | stage | trained on (data commit) |")
    print("|---|---|---|")
    for version in (story.champion, story.challenger):
        if version in versions:
            mv = versions[version]
            print(f"| {version} | {mv.stage.value} | {mv.lineage.data_commits[0][:12]} |")
    if story.challenger:
        print_canary_sample(vs, repo, registry, story.challenger)
    if story.traffic:
        t = story.traffic
        print(f"\nsimulated users during the rollout: {t['sent']} requests, {t['failed']} failed; answered by "
              + ", ".join(f"{v}: {n}" for v, n in sorted(t["by_version"].items())))
    print(f"\noutcome: {story.outcome}; drift detected → {story.outcome or 'end'}: "
          f"{_minutes(story.drift_at, story.outcome_at)} (retrain run {_minutes(story.retrain_requested_at, story.retrain_finished_at)}, "
          f"canary {_minutes(story.canary_at, story.outcome_at)}); act two took {_minutes(story.started, story.outcome_at)}")


def print_canary_sample(vs, repo: str, registry, challenger: str) -> None:
    """What the sample planner computed when the challenger entered, and what each canary decision had of it."""
    from speech_assets.serving.sample_plan import CanarySamplePlan
    from speech_assets.storage.base import DEFAULT_BRANCH
    from speech_assets.storage.layout import SAMPLE_PLAN_PATH
    from speech_assets.training.artifacts import MODEL_NAME

    try:
        stored = json.loads(vs.get_object(repo, DEFAULT_BRANCH, SAMPLE_PLAN_PATH))
    except Exception as exc:  # noqa: BLE001 - a story without a plan says so instead of failing its summary
        print(f"\ncanary sample plan: none stored ({exc})")
        return
    if stored.get("version") not in (None, challenger):
        print(f"\ncanary sample plan: the stored plan is for {stored.get('version')}, not {challenger}")
        return
    print(f"\ncanary sample plan for {challenger}: {CanarySamplePlan.from_dict(stored).summary()}\n")
    print("| canary decision | weight | live requests (of needed) | rate /s | time left | probe power |")
    print("|---|---:|---:|---:|---:|---:|")
    for event in registry.audit_log(MODEL_NAME):
        sample = (event.evidence or {}).get("sample") if event.version == challenger else None
        if not sample or event.actor != "canary_sensor":
            continue
        action = ((event.evidence or {}).get("decision") or {}).get("action", event.action)
        rate, eta = sample.get("challenger_rate_per_s"), sample.get("eta_s")
        power = sample.get("probe_power")
        print(f"| {action} | {(event.evidence or {}).get('weight', 0):g} % | {sample.get('live_requests')} of "
              f"{sample.get('live_requests_needed')} | {'-' if rate is None else f'{rate:.2f}'} | "
              f"{'-' if eta is None else f'{eta / 60:.1f} min'} | {'-' if power is None else f'{power:.0%}'} |")
