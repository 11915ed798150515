"""The canary sensor: every tick gathers the live evidence and steps the challenger up, promotes it or rolls it
back (speech_assets.serving.controller does the work; this is the Dagster face of it).

Each tick's outcome is in the sensor's tick log; every step, promotion and rollback is also written to the
registry's audit trail with its evidence and shown as an observation of `asr_deployment`. After a promotion the
same sensor keeps the new production model on probation for the release policy's bake window
(`serving.bake`); a rollback, of a canary or after a promotion, is also an alert (kind "rollback").

The canary's steps and guardrails and the approvals a promotion needs come from the release policy on main
(`speech_assets.governance.policy`), read afresh every tick, so a policy change applies from the next tick.
"""

import json

import dagster as dg

from speech_assets import settings
from speech_assets.defs.operations.resources import AlertSinkResource
from speech_assets.defs.serving.jobs import deploy_models
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.governance.approvals import check_stage_change
from speech_assets.governance.policy import read_policy
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.controller import CanaryController
from speech_assets.serving.probe_set import ProbeSet
from speech_assets.serving.rollout import publish_deployment_record
from speech_assets.serving.routing import routing_markdown
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError
from speech_assets.storage.layout import PROBE_SET_PATH, SAMPLE_PLAN_PATH
from speech_assets.training.artifacts import MODEL_NAME

CANARY_INTERVAL_S = settings.sensor_interval_s("canary", 30)


def _probe_loader(vs, repo: str):
    def load():
        try:
            probe = ProbeSet.from_json(vs.get_object(repo, DEFAULT_BRANCH, PROBE_SET_PATH))
        except NotFoundError:
            return []
        return probe.load(vs, repo)

    return load


def _ab_design(policy):
    """A/B mode's pre-registered design (None in canary mode). The outcome is each live request's calibrated
    confidence (the served model's estimate that the transcript is right, gated by ECE before release); its sd is
    taken at 0.5, the largest a [0, 1] outcome can have, so the planned sample is never too small."""
    r = policy.rollout
    if r.mode != "ab":
        return None
    from speech_assets.evaluation.sequential import SequentialDesign

    return SequentialDesign.plan(looks=r.ab_looks, alpha=r.alpha, power=r.power, min_effect=r.min_effect, sd=0.5)


def _plan_loader(vs, repo: str):
    def load():
        try:
            return json.loads(vs.get_object(repo, DEFAULT_BRANCH, SAMPLE_PLAN_PATH))
        except NotFoundError:
            return None

    return load


@dg.sensor(
    name="canary_sensor",
    minimum_interval_seconds=CANARY_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    job=deploy_models,
    description="Steps a canary's traffic 10 → 50 → 100 %, promotes it, or rolls it back on live metrics "
    "(error rate, p95 latency, mean confidence) and WER on a labelled probe set sent through the service.",
)
def canary_sensor(context: dg.SensorEvaluationContext, store: VersionStoreResource, serving: ServingResource,
                  alerts: AlertSinkResource):
    vs, repo = store.open(), store.repository
    release = read_policy(vs, repo)
    registry = ModelRegistry(vs, repo)
    controller = CanaryController(
        serving.target(), registry, serving.policy(release.policy), model_name=MODEL_NAME,
        probes=_probe_loader(vs, repo), api_key=serving.api_key, actor="canary_sensor",
        approval=lambda version, to_stage: check_stage_change(vs, repo, release.policy, registry, MODEL_NAME,
                                                              version, to_stage),
        bake_policy=serving.bake_policy(release.policy),
        sample_plan=_plan_loader(vs, repo),
        ab_design=_ab_design(release.policy),
    )
    outcome = controller.tick(json.loads(context.cursor) if context.cursor else None)
    cursor = json.dumps(outcome.cursor)
    source = f"release policy at {release.commit[:12]}" + ("" if release.stored else " (defaults: none stored)")
    context.log.info(f"{outcome.action}: {outcome.message} [{source}]")
    if outcome.decision is not None:
        context.log.info(outcome.decision.markdown())
    if outcome.action == "out_of_sync":
        # Deploying needs the model import and maybe a bento build: a run, not a sensor tick. The run key makes
        # the request once per registry state, however many ticks see it before the run lands; a run that is
        # already deploying (a retrain between registering and rolling out) is left to finish.
        active = context.instance.get_run_records(dg.RunsFilter(
            job_name=None, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                     dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]), limit=50)
        deploying = [r.dagster_run.run_id[:8] for r in active if r.dagster_run.job_name in ("train_and_deploy", deploy_models.name)]
        if deploying:
            context.update_cursor(cursor)
            return dg.SkipReason(f"{outcome.message}; run {deploying[0]} is deploying: waiting for it")
        registry = ModelRegistry(vs, repo)
        production, canary = registry.production(MODEL_NAME), registry.canary(MODEL_NAME)
        key = (f"sync-{production.version if production else 'none'}-{canary.version if canary else 'none'}"
               f"-r{outcome.routing.revision}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=key, tags={"speech_assets/reason": outcome.message[:200]})], cursor=cursor
        )
    if not outcome.changed_routing:
        context.update_cursor(cursor)
        return dg.SkipReason(f"{outcome.action}: {outcome.message}")

    status = serving.target().status()
    commit = publish_deployment_record(
        vs, repo, status, outcome.routing, f"canary-sensor-r{outcome.routing.revision}", outcome.message
    )
    metadata = {
        "action": outcome.action,
        "reason": outcome.message,
        "champion": outcome.routing.champion.version,
        "challenger": outcome.routing.challenger.version if outcome.routing.challenger else "none",
        "challenger_weight_pct": outcome.routing.weight,
        "routing_revision": outcome.routing.revision,
        "routing": dg.MetadataValue.md(routing_markdown(outcome.routing)),
        "commit_out": dg.MetadataValue.text(commit),
    }
    if outcome.decision is not None:
        metadata["decision"] = dg.MetadataValue.md(outcome.decision.markdown())
    if outcome.evidence:
        metadata["evidence"] = dg.MetadataValue.json(outcome.evidence)
    if outcome.action in ("rollback", "bake_rollback"):
        _alert_rollback(context, alerts, outcome)
    return dg.SensorResult(
        asset_events=[dg.AssetObservation(asset_key="asr_deployment", metadata=metadata)], cursor=cursor,
    )


def _alert_rollback(context, alerts: AlertSinkResource, outcome) -> None:
    """A rollback took a version out of service on its own: tell a person (the evidence is in the audit trail)."""
    from speech_assets.operations.alerts import Alert

    after = "after its promotion (bake guard)" if outcome.action == "bake_rollback" else "during its canary"
    rolled = (outcome.evidence.get("since_promotion") or {}).get("version") or (
        ((outcome.evidence.get("window") or {}).get("challenger") or {}).get("version", "?"))
    alert = Alert("rollback", "critical", f"{rolled} rolled back {after}: {outcome.message}"[:300],
                  {"action": outcome.action, "rolled_back": rolled, "serving": outcome.routing.champion.version,
                   "routing_revision": outcome.routing.revision, "reason": outcome.message},
                  dedupe_key=f"rollback-{rolled}")
    delivery = alerts.sink().send(alert)
    context.log.warning(f"alert sent: {alert.text()} ({delivery})")
