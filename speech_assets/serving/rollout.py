"""Putting the registry's models behind the service: what `asr_bento` and `asr_deployment` run (no Dagster).

    built = build_service_bento(store, repo, bentoml_home, run_id=run_id)      # models imported, bento built
    rolled = roll_out(store, repo, target, first_weight=10.0, probe_utterances=30, run_id=run_id)

Both follow the registry: its production version is the champion, its canary version (a newly registered
challenger) enters at `first_weight` percent; the canary sensor takes it from there. The bento is rebuilt only
when the service code changes (a new model is switched to by routing). What each step decided is kept in the
store: `storage.layout.BENTO_RECORD`, `DEPLOYMENT_RECORD` and the canary's probe set (`PROBE_SET_PATH`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.deploy import (
    BentoInfo,
    RolloutPlan,
    bento_exists,
    bento_info,
    build_bento,
    import_model,
    plan_rollout,
    service_source_digest,
)
from speech_assets.serving.probe_set import ProbeSet, choose_probe_set
from speech_assets.serving.sample_plan import canary_sample_plan
from speech_assets.serving.routing import ModelRef, RoutingState
from speech_assets.serving.targets import DeploymentStatus, DeployTarget
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import (BENTO_RECORD, DEPLOYMENT_RECORD, EVALUATION_POINTER, PROBE_SET_PATH,
                                         SAMPLE_PLAN_PATH)
from speech_assets.storage.publish import publish_objects
from speech_assets.training.artifacts import MODEL_NAME

_log = logging.getLogger(__name__)


class RolloutError(RuntimeError):
    """A rollout step cannot go on; the message says why (and what to run first)."""


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, default=str).encode()


def _read_json(store: VersionStore, repo: str, path: str) -> dict | None:
    try:
        return json.loads(store.get_object(repo, DEFAULT_BRANCH, path))
    except NotFoundError:
        return None


# -- the bento ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BentoBuild:
    """The bento that serves the registry's models, and the record of it on main."""

    info: BentoInfo
    rebuilt: bool  # False: the service code was unchanged and the previous bento is reused
    models: dict  # version -> {tag, stage, temperature, checkpoint_sha256, size_bytes}
    production: str
    canary: str | None
    source_digest: str  # of the service code the bento was built from
    commit: str  # main after the bento record was merged

    @property
    def model_bytes(self) -> int:
        return sum(m["size_bytes"] for m in self.models.values())

    def models_markdown(self) -> str:
        table = ["| version | stage | BentoML model | size (MB) | temperature |", "|---|---|---|---:|---:|"]
        table += [f"| {v} | {m['stage']} | `{m['tag']}` | {m['size_bytes'] / 1e6:.2f} | {m['temperature']:.3f} |"
                  for v, m in self.models.items()]
        return "\n".join(table)


def _import_models(registry: ModelRegistry, versions, bentoml_home: Path, log: logging.Logger) -> dict:
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mv in versions:
            path = Path(tmp) / f"{mv.version}.pt"
            path.write_bytes(registry.checkpoint(MODEL_NAME, mv.version))
            temperature = float(registry.calibration(MODEL_NAME, mv.version).get("temperature", 1.0))
            tag = import_model(path, version=mv.version, temperature=temperature, bentoml_home=bentoml_home,
                               lineage={"data_commits": list(mv.lineage.data_commits), "registry_commit": mv.commit_id})
            models[mv.version] = {"tag": tag, "stage": mv.stage.value, "temperature": temperature,
                                  "checkpoint_sha256": mv.checkpoint_sha256, "size_bytes": mv.checkpoint_size}
            log.info(f"model {mv.version} ({mv.stage.value}) is {tag} in {bentoml_home}")
    return models


def build_service_bento(store: VersionStore, repo: str, bentoml_home: Path, *, run_id: str,
                        log: logging.Logger = _log) -> BentoBuild:
    """Import the registry's production and canary models into BentoML's model store (asr:<semver>, sha checked)
    and build the service bento unless the service code is unchanged; records the result in BENTO_RECORD.

    Raises RolloutError when nothing is in production."""
    registry = ModelRegistry(store, repo)
    production, canary = registry.production(MODEL_NAME), registry.canary(MODEL_NAME)
    if production is None:
        raise RolloutError("no production model in the registry: nothing to serve yet (run train_and_deploy)")
    models = _import_models(registry, filter(None, (production, canary)), bentoml_home, log)

    digest = service_source_digest()
    previous = _read_json(store, repo, BENTO_RECORD)
    if previous and previous.get("source_digest") == digest and bento_exists(previous["bento_tag"], bentoml_home):
        info, rebuilt = bento_info(previous["bento_tag"], bentoml_home), False
        log.info(f"service code unchanged: reusing bento {info.tag}")
    else:
        log.info("building the service bento (bentoml build, offline)")
        info, rebuilt = build_bento(bentoml_home), True
    record = {"bento_tag": info.tag, "source_digest": digest, "size_bytes": info.size_bytes, "models": models,
              "production": production.version, "canary": canary.version if canary else None}
    commit = publish_objects(
        store, repo, {BENTO_RECORD: _json(record)}, branch_prefix="serving-bento",
        message=f"asr_bento {info.tag}: production {production.version}" + (f", canary {canary.version}" if canary else ""),
        metadata={"run_id": run_id, "bento_tag": info.tag}, content_types={BENTO_RECORD: "application/json"},
    )
    return BentoBuild(info, rebuilt, models, production.version, canary.version if canary else None, digest, commit)


# -- the deployment -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rollout:
    """What the target serves after the rollout, and the record of it on main."""

    plan: RolloutPlan
    status: DeploymentStatus
    bento_tag: str
    probe: ProbeSet | None  # the canary's labelled probe set (None: no manifest to choose it from)
    commit: str  # main after the deployment record was merged

    @property
    def routing(self) -> RoutingState:
        return self.plan.routing


def publish_deployment_record(store: VersionStore, repo: str, status: DeploymentStatus, routing: RoutingState,
                              run_id: str, why: str) -> str:
    """The deployment's state (port, PID, versions, weights) in the store, so its history is versioned too."""
    record = {"target": status.target, "status": status.to_dict(), "routing": json.loads(routing.to_json()), "why": why}
    return publish_objects(
        store, repo, {DEPLOYMENT_RECORD: _json(record)}, branch_prefix="serving-deployment",
        message=f"asr_deployment: {why}", metadata={"run_id": run_id, "routing_revision": str(routing.revision)},
        content_types={DEPLOYMENT_RECORD: "application/json"},
    )


def _probe_set(store: VersionStore, repo: str, commit: str, size: int, choose: bool,
               log: logging.Logger, sizing: dict | None = None, challenger: str | None = None
               ) -> tuple[ProbeSet | None, dict]:
    """The probe set, and the objects to publish: a new one chosen from the manifest at `commit` when a
    challenger enters (or none is stored yet), else the stored one. With `sizing` (the rollout policy's
    min_effect / alpha / power and the guardrail max_error_rate), a challenger's entry also sizes its canary
    (`serving.sample_plan`): the probe set spans at least the speakers the plan needs, where the test split has
    them, and the plan is stored beside it."""
    objects, probe = {}, None
    if choose or _read_json(store, repo, PROBE_SET_PATH) is None:
        try:
            plan = None
            if choose and sizing is not None:
                plan = canary_sample_plan(_champion_rows(store, repo), **sizing)
            probe, speakers = choose_probe_set(store, repo, commit, size,
                                               span_speakers=plan.probe_speakers_needed if plan else None)
            objects[PROBE_SET_PATH] = probe.to_json()
            if plan is not None:
                plan = plan.with_probe(speakers)
                objects[SAMPLE_PLAN_PATH] = json.dumps({"version": challenger, **plan.to_dict()}, indent=1).encode()
                log.info(f"canary sample plan: {plan.summary()}")
        except NotFoundError:
            log.warning("no manifest in the store: the canary will have no labelled probe set")
    if probe is None:
        try:
            probe = ProbeSet.from_json(store.get_object(repo, DEFAULT_BRANCH, PROBE_SET_PATH))
        except NotFoundError:
            probe = None
    return probe, objects


def _champion_rows(store: VersionStore, repo: str) -> list[dict] | None:
    """The champion's rows on the latest evaluation's test set (None before any comparison)."""
    import io

    import pyarrow.parquet as pq

    pointer = _read_json(store, repo, EVALUATION_POINTER)
    if not pointer or not pointer.get("champion_rows"):
        return None
    try:
        return pq.read_table(io.BytesIO(store.get_object(repo, DEFAULT_BRANCH, pointer["champion_rows"]))).to_pylist()
    except NotFoundError:
        return None


def roll_out(store: VersionStore, repo: str, target: DeployTarget, *, first_weight: float, probe_utterances: int,
             run_id: str, log: logging.Logger = _log, sizing: dict | None = None) -> Rollout:
    """Serve BENTO_RECORD's bento on `target` with the routing the registry asks for (`plan_rollout`): a new
    canary enters beside the champion at `first_weight` percent. Raises RolloutError when there is no bento record
    or the service does not become ready."""
    bento = _read_json(store, repo, BENTO_RECORD)
    if bento is None:
        raise RolloutError(f"{BENTO_RECORD} is missing: materialize asr_bento first")

    def ref(version: str | None) -> ModelRef | None:
        if version is None:
            return None
        m = bento["models"][version]
        return ModelRef(version, m["tag"], m["temperature"])

    plan = plan_rollout(target.routing(), ref(bento["production"]), ref(bento["canary"]), first_weight)
    log.info(f"rollout: {plan.action} — {plan.reason}")

    # The probe set is chosen when a challenger enters, from the test split at this commit, so every step of
    # its canary is measured on the same audio.
    probe_commit = store.resolve(repo, DEFAULT_BRANCH)
    challenger_enters = plan.routing.challenger is not None and plan.action != "unchanged"
    probe, objects = _probe_set(store, repo, probe_commit, probe_utterances, challenger_enters, log, sizing,
                                plan.routing.challenger.version if plan.routing.challenger else None)

    status = target.deploy(bento["bento_tag"], plan.routing)
    if not status.ready:
        raise RolloutError(f"the service did not become ready on {status.url}")
    commit = publish_deployment_record(store, repo, status, plan.routing, run_id, plan.reason)
    if objects:
        publish_objects(store, repo, objects, branch_prefix="serving-probe-set", message="canary probe set",
                        metadata={"run_id": run_id, "probe_commit": probe_commit})
    return Rollout(plan, status, bento["bento_tag"], probe, commit)
