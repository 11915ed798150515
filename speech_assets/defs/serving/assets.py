"""`asr_bento` and `asr_deployment`: the registry's models behind the HTTP service, rolled out as a canary.

Both follow the registry: its production version is the champion, its canary version (a newly registered
challenger) enters at the first canary weight; the canary sensor (sensors.py) takes it from there.
"""

import json
import tempfile
from pathlib import Path

import dagster as dg

from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.governance.policy import read_policy
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.deploy import (
    bento_exists,
    bento_info,
    build_bento,
    import_model,
    plan_rollout,
    service_source_digest,
)
from speech_assets.serving.probe_set import PROBE_SET_PATH, ProbeSet, probe_set_from_manifest
from speech_assets.serving.routing import ModelRef, RoutingState, routing_markdown
from speech_assets.serving.targets import DeploymentStatus
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError
from speech_assets.storage.publish import publish_objects
from speech_assets.training.artifacts import MODEL_NAME

# what both serving assets share in the graph (group, owners, tags, kind, code version)
_SERVING = dict(group_name="serving", owners=["team:speech-platform"], tags={"layer": "serving", "domain": "serving"},
                kinds={"bentoml"}, code_version="1")
BENTO_RECORD = "serving/bento.json"
DEPLOYMENT_RECORD = "serving/local/deployment.json"


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, default=str).encode()


def _read_json(vs, repo: str, path: str) -> dict | None:
    try:
        return json.loads(vs.get_object(repo, DEFAULT_BRANCH, path))
    except NotFoundError:
        return None


def publish_deployment_record(vs, repo: str, status: DeploymentStatus, routing: RoutingState, run_id: str, why: str) -> str:
    """The deployment's state (port, PID, versions, weights) in the store, so its history is versioned too."""
    record = {"target": status.target, "status": status.to_dict(), "routing": json.loads(routing.to_json()), "why": why}
    return publish_objects(
        vs, repo, {DEPLOYMENT_RECORD: _json(record)}, branch_prefix="serving-deployment",
        message=f"asr_deployment: {why}", metadata={"run_id": run_id, "routing_revision": str(routing.revision)},
        content_types={DEPLOYMENT_RECORD: "application/json"},
    )


@dg.asset(
    deps=[registered_model],
    **_SERVING,
    description=(
        "Imports the registry's production and canary models into BentoML's model store (asr:<semver>, sha "
        "checked, immutable) and builds the service bento (`bentoml build`, offline). The bento is rebuilt only "
        "when the service code changes: a new model is switched to by routing, so it never moves the address."
    ),
)
def asr_bento(context: dg.AssetExecutionContext, store: VersionStoreResource, serving: ServingResource) -> dg.MaterializeResult:
    vs, repo = store.open(), store.repository
    registry = ModelRegistry(vs, repo)
    production, canary = registry.production(MODEL_NAME), registry.canary(MODEL_NAME)
    if production is None:
        raise dg.Failure(description="no production model in the registry: nothing to serve yet (run train_and_deploy)")
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mv in filter(None, (production, canary)):
            path = Path(tmp) / f"{mv.version}.pt"
            path.write_bytes(registry.checkpoint(MODEL_NAME, mv.version))
            temperature = float(registry.calibration(MODEL_NAME, mv.version).get("temperature", 1.0))
            tag = import_model(path, version=mv.version, temperature=temperature, bentoml_home=serving.bentoml_dir,
                               lineage={"data_commits": list(mv.lineage.data_commits), "registry_commit": mv.commit_id})
            models[mv.version] = {"tag": tag, "stage": mv.stage.value, "temperature": temperature,
                                  "checkpoint_sha256": mv.checkpoint_sha256, "size_bytes": mv.checkpoint_size}
            context.log.info(f"model {mv.version} ({mv.stage.value}) is {tag} in {serving.bentoml_dir}")

    digest = service_source_digest()
    previous = _read_json(vs, repo, BENTO_RECORD)
    if previous and previous.get("source_digest") == digest and bento_exists(previous["bento_tag"], serving.bentoml_dir):
        info, rebuilt = bento_info(previous["bento_tag"], serving.bentoml_dir), False
        context.log.info(f"service code unchanged: reusing bento {info.tag}")
    else:
        context.log.info("building the service bento (bentoml build, offline)")
        info, rebuilt = build_bento(serving.bentoml_dir), True
    record = {"bento_tag": info.tag, "source_digest": digest, "size_bytes": info.size_bytes, "models": models,
              "production": production.version, "canary": canary.version if canary else None}
    commit = publish_objects(
        vs, repo, {BENTO_RECORD: _json(record)}, branch_prefix="serving-bento",
        message=f"asr_bento {info.tag}: production {production.version}" + (f", canary {canary.version}" if canary else ""),
        metadata={"run_id": context.run.run_id, "bento_tag": info.tag}, content_types={BENTO_RECORD: "application/json"},
    )
    table = ["| version | stage | BentoML model | size (MB) | temperature |", "|---|---|---|---:|---:|"]
    table += [f"| {v} | {m['stage']} | `{m['tag']}` | {m['size_bytes'] / 1e6:.2f} | {m['temperature']:.3f} |"
              for v, m in models.items()]
    return dg.MaterializeResult(metadata={
        "bento_tag": info.tag,
        "model_version": production.version,
        "canary_version": canary.version if canary else "none",
        "bento_size_mb": round(info.size_bytes / 1e6, 3),
        "model_size_mb": round(sum(m["size_bytes"] for m in models.values()) / 1e6, 3),
        "rebuilt": rebuilt,
        "models": dg.MetadataValue.md("\n".join(table)),
        "service_source_digest": dg.MetadataValue.text(digest[:16]),
        "commit_out": dg.MetadataValue.text(commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(commit, BENTO_RECORD)),
    })


@dg.asset(
    deps=[asr_bento],
    **_SERVING,
    description=(
        "Rolls the bento out on the local target (`bentoml serve` on 127.0.0.1, started and kept by the "
        "platform): the first model serves everything; a new registry canary enters beside the champion at the "
        "first canary weight, routed by a stable hash of the client id. The canary sensor steps it up, promotes "
        "it or rolls it back. State (port, PID, versions, weights) and the probe set are kept in the store."
    ),
)
def asr_deployment(context: dg.AssetExecutionContext, store: VersionStoreResource, serving: ServingResource) -> dg.MaterializeResult:
    vs, repo = store.open(), store.repository
    bento = _read_json(vs, repo, BENTO_RECORD)
    if bento is None:
        raise dg.Failure(description=f"{BENTO_RECORD} is missing: materialize asr_bento first")

    def ref(version: str | None) -> ModelRef | None:
        if version is None:
            return None
        m = bento["models"][version]
        return ModelRef(version, m["tag"], m["temperature"])

    target = serving.target()
    current = target.routing()
    first_weight = serving.first_canary_weight
    if first_weight is None:  # a challenger enters at the release policy's first step (versioned in the store)
        first_weight = read_policy(vs, repo).policy.risk.canary_steps[0]
    plan = plan_rollout(current, ref(bento["production"]), ref(bento["canary"]), first_weight)
    context.log.info(f"rollout: {plan.action} — {plan.reason}")

    # The probe set is chosen when a challenger enters, from the test split at this commit, so every step of
    # its canary is measured on the same audio.
    probe_commit = vs.resolve(repo, DEFAULT_BRANCH)
    objects = {}
    probe = None
    challenger_enters = plan.routing.challenger is not None and plan.action != "unchanged"
    if challenger_enters or _read_json(vs, repo, PROBE_SET_PATH) is None:
        try:
            probe = probe_set_from_manifest(vs, repo, probe_commit, serving.probe_utterances)
            objects[PROBE_SET_PATH] = probe.to_json()
        except NotFoundError:
            context.log.warning("no manifest in the store: the canary will have no labelled probe set")
    if probe is None:
        try:
            probe = ProbeSet.from_json(vs.get_object(repo, DEFAULT_BRANCH, PROBE_SET_PATH))
        except NotFoundError:
            probe = None

    status = target.deploy(bento["bento_tag"], plan.routing)
    if not status.ready:
        raise dg.Failure(description=f"the service did not become ready on {status.url}")
    commit = publish_deployment_record(vs, repo, status, plan.routing, context.run.run_id, plan.reason)
    if objects:
        publish_objects(vs, repo, objects, branch_prefix="serving-probe-set", message="canary probe set",
                        metadata={"run_id": context.run.run_id, "probe_commit": probe_commit})
    r = plan.routing
    return dg.MaterializeResult(metadata={
        "action": plan.action,
        "reason": plan.reason,
        "url": dg.MetadataValue.url(status.url),
        "port": status.port,
        "pid": status.pid,
        "bento_tag": bento["bento_tag"],
        "champion": r.champion.version,
        "challenger": r.challenger.version if r.challenger else "none",
        "challenger_weight_pct": r.weight,
        "routing_revision": r.revision,
        "routing": dg.MetadataValue.md(routing_markdown(r)),
        "probe_utterances": len(probe.items) if probe else 0,
        "commit_out": dg.MetadataValue.text(commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(commit, DEPLOYMENT_RECORD)),
    })
