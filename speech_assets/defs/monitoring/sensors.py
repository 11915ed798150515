"""The retrain controller: an erasure, drift (with hysteresis), new data or the schedule requests `train_and_deploy`.

The decision itself is speech_assets.monitoring.retrain.decide (pure, tested on its own); this sensor gathers
its inputs — new `drift_report` materializations, the registry's production model, how much data arrived since
it was trained, whether a retrain is in flight, which erasures mark the production model — keeps the
controller's state in its cursor and writes every decision, fire or hold and why, to its tick log.

A production model marked by an erasure (it trained on, or was warm-started from a model that trained on, a speaker
since erased) is never the starting point of a retrain: `asr_checkpoint` warm-starts from the production model when
`warm_start` is set, which would carry the erased speaker's influence into the new model, so every retrain requested
while production is marked runs with `warm_start: false` (trains from scratch).
"""

import json
import time
from datetime import datetime

import dagster as dg

from speech_assets import settings
from speech_assets.defs.monitoring.resources import RetrainSettings
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.defs.training.jobs import train_and_deploy
from speech_assets.evaluation.run import DRIFT_BATCH_TAG
from speech_assets.intake.manifest import read_manifest_rows
from speech_assets.monitoring.retrain import DriftEvent, RetrainState, decide, landed
from speech_assets.registry.marks import erasure_marks
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError
from speech_assets.training.artifacts import MODEL_NAME

RETRAIN_INTERVAL_S = settings.sensor_interval_s("retrain", 30)
_ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED]


def _drift_events(instance, after: str | None) -> tuple[list[DriftEvent], str | None]:
    result = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=200, cursor=after, ascending=True)
    events = []
    for record in result.records:
        mat = record.asset_materialization
        md = {k: v.value for k, v in mat.metadata.items()}
        if md.get("status") != "judged":  # no reference yet, or a batch the model trained on
            continue
        events.append(DriftEvent(mat.partition or "?", float(md.get("drift_score", 0.0)), bool(md.get("drifted")),
                                 str(md.get("data_commit", "")), tuple(x for x in str(md.get("fired", "")).split(", ") if x and x != "none")))
    return events, result.cursor if result.records else after


@dg.sensor(
    name="retrain_sensor",
    job=train_and_deploy,
    minimum_interval_seconds=RETRAIN_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests train_and_deploy when the production model is marked by a speaker erasure (from scratch), "
    "when drift crosses its threshold (hysteresis, cooldown, daily budget, "
    "one retrain per data commit), when enough new data arrived, or when the model is due; says why in its tick log.",
)
def retrain_sensor(context: dg.SensorEvaluationContext, store: VersionStoreResource, retrain: RetrainSettings):
    cursor = json.loads(context.cursor) if context.cursor else {}
    vs, repo = store.open(), store.repository
    registry = ModelRegistry(vs, repo)
    production = registry.production(MODEL_NAME)
    if production is None:
        return dg.SkipReason("no production model yet: the first model is trained by an operator (or the demo)")
    state = RetrainState.from_dict(cursor.get("state"))
    if cursor.get("production") not in (None, production.version):
        state = landed(state)
        context.log.info(f"production is now {production.version}: drift is judged against its data; trigger re-armed")
    events, mat_cursor = _drift_events(context.instance, cursor.get("materializations"))

    head = vs.resolve(repo, DEFAULT_BRANCH)
    try:
        rows = read_manifest_rows(vs, repo, head)
        trained_rows = len(read_manifest_rows(vs, repo, production.lineage.data_commits[0]))
    except NotFoundError:
        rows, trained_rows = [], 0
    published = {r["batch_id"] for r in rows}
    waiting = sorted({e.batch_id for e in events if e.drifted} - published)
    if waiting:
        # A retrain must see the drifted batch: wait (without consuming the events) until the manifest has it.
        return dg.SkipReason(f"drift in {', '.join(waiting)}: waiting for audio_manifest to include it")
    created = datetime.fromisoformat(production.created_at).timestamp()
    busy = bool(context.instance.get_run_records(
        dg.RunsFilter(job_name=train_and_deploy.name, statuses=_ACTIVE), limit=1))
    now = time.time()
    marks = erasure_marks(vs, repo, MODEL_NAME, ref=head).get(production.version, [])
    decision, state = decide(retrain.policy(), state, now, drift=events, head_commit=head,
                             new_utterances=max(len(rows) - trained_rows, 0), model_age_s=now - created, busy=busy,
                             erasures=marks)
    context.log.info(decision.reason)
    new_cursor = json.dumps({"state": state.to_dict(), "materializations": mat_cursor,
                             "production": production.version})
    if not decision.fire:
        context.update_cursor(new_cursor)
        return dg.SkipReason(decision.reason)
    run_config = retrain.run_config()
    tags = {"speech_assets/trigger": decision.trigger, "speech_assets/data_commit": decision.data_commit,
            "speech_assets/reason": decision.reason[:250]}
    if decision.drift_batch:
        tags[DRIFT_BATCH_TAG] = decision.drift_batch  # eval_report judges the release on its drift test set
    if decision.from_scratch or marks:
        run_config = _from_scratch(run_config, json.loads(retrain.scratch_train_config_json))
        tags["speech_assets/erasures"] = ",".join(decision.erasures or marks)[:250]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=decision.run_key, run_config=run_config, tags=tags)],
        cursor=new_cursor,
    )


def _from_scratch(run_config: dict, scratch_config: dict) -> dict:
    """The retrain's run config training from scratch (the production model learned from erased data).

    The whole training config is replaced, not just `warm_start`: a fine-tune's short schedule (one epoch, a step
    cap, a higher learning rate) is far too little for a model started from random weights — seen in the demo: 150
    steps from scratch reached 49.8 % WER and the gate rejected it."""
    ops = dict(run_config.get("ops", {}))
    ckpt = dict(ops.get("asr_checkpoint", {}))
    ckpt["config"] = {**scratch_config, "warm_start": False}
    ops["asr_checkpoint"] = ckpt
    return {**run_config, "ops": ops}
