"""`drift_report[batch]`: how far each new batch is from the production model's training population."""

import json

import dagster as dg

from speech_assets.defs.features.assets import FEATURES_AUTOMATION, features
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.store import load_features, load_stats
from speech_assets.monitoring.drift import DriftConfig, drift_report as compute_drift_report
from speech_assets.monitoring.reference import reference_for, served_confidences, transcriber_for
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import DEFAULT_BRANCH
from speech_assets.storage.publish import publish_objects
from speech_assets.training.artifacts import MODEL_NAME

DRIFT_PREFIX = "monitoring/drift"


class DriftAssetConfig(dg.Config):
    """Thresholds of the drift signals (see speech_assets.monitoring.drift.DriftConfig for each one's meaning)."""

    min_utterances: int = 30
    min_subgroup_utterances: int = 15
    alpha: float = 0.01
    psi_threshold: float = 0.25
    band_js_threshold: float = 0.15
    mix_js_threshold: float = 0.20
    unseen_share_threshold: float = 0.10
    subgroup_shift_threshold: float = 0.50
    oov_threshold: float = 0.05
    clipping_threshold: float = 0.01
    confidence_drop_threshold: float = 0.10
    confidence_utterances: int = 200  # the served model transcribes at most this many of the batch's utterances

    def drift_config(self) -> DriftConfig:
        return DriftConfig(**{k: v for k, v in self.model_dump().items() if k in DriftConfig.__dataclass_fields__})


@dg.asset(
    partitions_def=intake_batches,
    deps=[features],
    group_name="monitoring",
    owners=["team:speech-ml"],
    tags={"layer": "gold", "domain": "monitoring"},
    kinds={"python"},
    code_version="1",
    automation_condition=FEATURES_AUTOMATION.with_label("after its batch's features"),
    description=(
        "Compares the batch's feature statistics with the production model's training population: log-mel band "
        "distributions (JS), duration, SNR and speaking-rate PSI, clipping, sample-rate and codec mix, "
        "out-of-vocabulary rate, accent/channel mix and unseen subgroups, per-subgroup band shift, and the served "
        "model's confidence on the batch. Effect sizes with thresholds, chi-square tests where utterances are "
        "independent, minimum sample sizes. Reads statistics, not audio: its cost does not grow with the corpus."
    ),
)
def drift_report(context: dg.AssetExecutionContext, config: DriftAssetConfig, store: VersionStoreResource) -> dg.MaterializeResult:
    vs, repo = store.open(), store.repository
    batch = context.partition_key
    registry = ModelRegistry(vs, repo)
    production = registry.production(MODEL_NAME)
    if production is None:
        # Nothing serves yet, so there is no population to drift from; say so rather than invent a reference.
        return dg.MaterializeResult(metadata={"status": "no production model yet: no reference to compare with",
                                              "drift_score": 0.0, "drifted": False})
    reference = reference_for(vs, repo, registry, MODEL_NAME, production.version, run_id=context.run.run_id)
    transcriber = transcriber_for(registry, MODEL_NAME, production.version)
    head = vs.resolve(repo, DEFAULT_BRANCH)
    stats = load_stats(vs, repo, head, transcriber.feature_config, batch)
    feats = list(load_features(vs, repo, head, transcriber.feature_config, batch).values())
    confidences = served_confidences(transcriber, feats, config.confidence_utterances)
    report = compute_drift_report(batch, stats, reference, config.drift_config(), confidences)
    in_reference = batch in reference.get("batch_ids", [])
    body = {**report.to_dict(), "reference_model": production.version, "data_commit": head, "in_reference": in_reference}
    path = f"{DRIFT_PREFIX}/{batch}.json"
    commit = publish_objects(vs, repo, {path: json.dumps(body, sort_keys=True, default=str).encode()},
                             branch_prefix=f"drift-{batch}", message=f"drift_report {batch}",
                             metadata={"run_id": context.run.run_id, "batch_id": batch},
                             content_types={path: "application/json"})
    metadata = {
        "status": "in the reference (the model trained on this batch)" if in_reference else "judged",
        "drift_score": round(report.score, 4),
        "drifted": report.drifted and not in_reference,
        "fired": ", ".join(report.fired) or "none",
        "utterances": report.utterances,
        "reference_model": production.version,
        "reference_batches": len(reference.get("batch_ids", [])),
        "data_commit": dg.MetadataValue.text(head),
        "report": dg.MetadataValue.md(report.markdown()),
        "commit_out": dg.MetadataValue.text(commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(commit, path)),
    }
    # every score as a number, every time: the UI plots each one across batches
    for s in report.signals:
        if s.value is not None:
            metadata[f"signal/{s.name}"] = float(round(s.value, 5))
    if report.drifted and not in_reference:
        context.log.warning(f"drift in {batch}: {', '.join(report.fired)} (score {report.score:.2f})")
    return dg.MaterializeResult(metadata=metadata)
