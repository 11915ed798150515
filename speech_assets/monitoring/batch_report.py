"""The drift report of one batch, judged against the production model's training population and stored: what
`drift_report[batch]` runs (no Dagster).

    judged = judge_batch(store, repo, "day-07", DriftConfig(), model_name="asr", confidence_utterances=200,
                         run_id=run_id)

It reads the batch's feature statistics (not its audio) at main's head, the production model's reference
(`monitoring.reference`, built on first use) and the served model's confidences on up to `confidence_utterances`
of the batch, and publishes the report at `storage.layout.drift_report_path(batch)`. A batch the production model
was trained on is reported but never counts as drifted.

A drifted batch gets its drift test set in the same commit (`intake.holdout.plan_drift_holdout`, stored at
`storage.layout.holdout_path(batch)`): part of its new speakers held out of training, so the retrain the drift
triggers is judged on the population that triggered it. A plan is made once per batch and never redrawn (a
speaker once held out stays out of every later training).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from speech_assets.features.store import load_features, load_stats
from speech_assets.intake.holdout import HoldoutPlan, HoldoutPolicy, plan_drift_holdout, read_holdout
from speech_assets.intake.manifest import manifest_rows_with
from speech_assets.monitoring.drift import DriftConfig, DriftReport, drift_report
from speech_assets.monitoring.reference import (
    feature_config_of,
    reference_for,
    samples_of_rows,
    served_confidences,
    transcriber_for,
)
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.layout import drift_report_path, holdout_path
from speech_assets.storage.publish import publish_objects


@dataclass(frozen=True)
class BatchDrift:
    report: DriftReport
    reference_model: str  # the production version whose training data is the reference
    reference_batches: int
    data_commit: str  # main's head the batch was read at
    in_reference: bool  # the production model was trained on this batch
    path: str
    commit: str  # main after the report was merged
    holdout: HoldoutPlan | None = None  # the batch's drift test set (drifted batches only)

    @property
    def status(self) -> str:
        return "in the reference (the model trained on this batch)" if self.in_reference else "judged"

    @property
    def drifted(self) -> bool:
        return self.report.drifted and not self.in_reference


def judge_batch(store: VersionStore, repo: str, batch_id: str, config: DriftConfig, *, model_name: str,
                confidence_utterances: int, run_id: str,
                holdout_policy: HoldoutPolicy = HoldoutPolicy()) -> BatchDrift | None:
    """Judge and store `batch_id`'s drift against `model_name`'s production version; None when nothing is in
    production (there is no population to drift from, and no reference is invented)."""
    registry = ModelRegistry(store, repo)
    production = registry.production(model_name)
    if production is None:
        return None
    reference = reference_for(store, repo, registry, model_name, production.version, run_id=run_id)
    transcriber = transcriber_for(registry, model_name, production.version)
    head = store.resolve(repo, DEFAULT_BRANCH)
    fc = feature_config_of(transcriber)
    stats = load_stats(store, repo, head, fc, batch_id)
    feats = load_features(store, repo, head, fc, batch_id)
    all_rows = manifest_rows_with(store, repo, head, batch_id)  # the manifest may not have it yet
    rows = [r for r in all_rows if r["batch_id"] == batch_id]
    confidences = served_confidences(transcriber, samples_of_rows(store, repo, head, rows, feats),
                                     confidence_utterances)
    report = drift_report(batch_id, stats, reference, config, confidences)
    in_reference = batch_id in reference.get("batch_ids", [])
    body = {**report.to_dict(), "reference_model": production.version, "data_commit": head, "in_reference": in_reference}
    path = drift_report_path(batch_id)
    objects = {path: json.dumps(body, sort_keys=True, default=str).encode()}
    holdout = read_holdout(store, repo, head, batch_id)
    if holdout is None and report.drifted and not in_reference:
        holdout = plan_drift_holdout(all_rows, batch_id, holdout_policy)
        objects[holdout_path(batch_id)] = holdout.to_json()
    commit = publish_objects(store, repo, objects,
                             branch_prefix=f"drift-{batch_id}", message=f"drift_report {batch_id}",
                             metadata={"run_id": run_id, "batch_id": batch_id},
                             content_types={p: "application/json" for p in objects})
    return BatchDrift(report, production.version, len(reference.get("batch_ids", [])), head, in_reference, path,
                      commit, holdout)
