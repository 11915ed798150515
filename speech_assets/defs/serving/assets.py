"""`asr_bento` and `asr_deployment`: the registry's models behind the HTTP service, rolled out as a canary.

Both follow the registry: its production version is the champion, its canary version (a newly registered
challenger) enters at the first canary weight; the canary sensor (sensors.py) takes it from there. The work is
`speech_assets.serving.rollout`'s.
"""

import dagster as dg

from speech_assets.defs.registry.assets import registered_model
from speech_assets.defs.serving.resources import ServingResource
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.governance.policy import read_policy
from speech_assets.serving.rollout import RolloutError, build_service_bento, roll_out
from speech_assets.serving.routing import routing_markdown
from speech_assets.storage.layout import BENTO_RECORD, DEPLOYMENT_RECORD

# what both serving assets share in the graph (group, owners, tags, kind, code version)
_SERVING = dict(group_name="serving", owners=["team:speech-platform"], tags={"layer": "serving", "domain": "serving"},
                kinds={"bentoml"}, code_version="1")


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
    try:
        built = build_service_bento(store.open(), store.repository, serving.bentoml_dir, run_id=context.run.run_id,
                                    log=context.log)
    except RolloutError as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(metadata={
        "bento_tag": built.info.tag,
        "model_version": built.production,
        "canary_version": built.canary or "none",
        "bento_size_mb": round(built.info.size_bytes / 1e6, 3),
        "model_size_mb": round(built.model_bytes / 1e6, 3),
        "rebuilt": built.rebuilt,
        "models": dg.MetadataValue.md(built.models_markdown()),
        "service_source_digest": dg.MetadataValue.text(built.source_digest[:16]),
        "commit_out": dg.MetadataValue.text(built.commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(built.commit, BENTO_RECORD)),
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
    release = read_policy(vs, repo).policy
    first_weight = serving.first_canary_weight
    if first_weight is None:  # a challenger enters at the release policy's first step (versioned in the store)
        # (A/B mode: at its fixed split, kept until the sequential test decides)
        first_weight = release.rollout.ab_split if release.rollout.mode == "ab" else release.risk.canary_steps[0]
    # the canary's sample is sized from the release policy's rollout section (and this deployment's guardrail)
    sizing = {"min_effect": release.rollout.min_effect, "alpha": release.rollout.alpha,
              "power": release.rollout.power, "max_error_rate": serving.policy(release).max_error_rate}
    try:
        rolled = roll_out(vs, repo, serving.target(), first_weight=first_weight,
                          probe_utterances=serving.probe_utterances, run_id=context.run.run_id, log=context.log,
                          sizing=sizing)
    except RolloutError as exc:
        raise dg.Failure(description=str(exc)) from None
    r, status = rolled.routing, rolled.status
    return dg.MaterializeResult(metadata={
        "action": rolled.plan.action,
        "reason": rolled.plan.reason,
        "url": dg.MetadataValue.url(status.url),
        "port": status.port,
        "pid": status.pid,
        "bento_tag": rolled.bento_tag,
        "champion": r.champion.version,
        "challenger": r.challenger.version if r.challenger else "none",
        "challenger_weight_pct": r.weight,
        "routing_revision": r.revision,
        "routing": dg.MetadataValue.md(routing_markdown(r)),
        "probe_utterances": len(rolled.probe.items) if rolled.probe else 0,
        "commit_out": dg.MetadataValue.text(rolled.commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(rolled.commit, DEPLOYMENT_RECORD)),
    })
