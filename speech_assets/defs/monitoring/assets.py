"""`drift_report[batch]`: how far each new batch is from the production model's training population."""

import dagster as dg

from speech_assets.defs.features.assets import FEATURES_AUTOMATION, features
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.monitoring.batch_report import judge_batch
from speech_assets.monitoring.drift import DriftConfig
from speech_assets.training.artifacts import MODEL_NAME


class DriftAssetConfig(dg.Config):
    """Thresholds of the drift signals (see speech_assets.monitoring.drift.DriftConfig for each one's meaning)."""

    min_utterances: int = DriftConfig.min_utterances
    min_subgroup_utterances: int = DriftConfig.min_subgroup_utterances
    alpha: float = DriftConfig.alpha
    psi_threshold: float = DriftConfig.psi_threshold
    band_js_threshold: float = DriftConfig.band_js_threshold
    mix_js_threshold: float = DriftConfig.mix_js_threshold
    unseen_share_threshold: float = DriftConfig.unseen_share_threshold
    subgroup_shift_threshold: float = DriftConfig.subgroup_shift_threshold
    oov_threshold: float = DriftConfig.oov_threshold
    clipping_threshold: float = DriftConfig.clipping_threshold
    confidence_drop_threshold: float = DriftConfig.confidence_drop_threshold
    confidence_utterances: int = 200  # the served model transcribes at most this many of the batch's utterances

    def to_domain(self) -> DriftConfig:
        return DriftConfig(**self.model_dump(exclude={"confidence_utterances"}))


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
    batch = context.partition_key
    judged = judge_batch(store.open(), store.repository, batch, config.to_domain(), model_name=MODEL_NAME,
                         confidence_utterances=config.confidence_utterances, run_id=context.run.run_id)
    if judged is None:
        # Nothing serves yet, so there is no population to drift from; say so rather than invent a reference.
        return dg.MaterializeResult(metadata={"status": "no production model yet: no reference to compare with",
                                              "drift_score": 0.0, "drifted": False})
    report = judged.report
    metadata = {
        "status": judged.status,
        "drift_score": round(report.score, 4),
        "drifted": judged.drifted,
        "fired": ", ".join(report.fired) or "none",
        "utterances": report.utterances,
        "reference_model": judged.reference_model,
        "reference_batches": judged.reference_batches,
        "data_commit": dg.MetadataValue.text(judged.data_commit),
        "report": dg.MetadataValue.md(report.markdown()),
        "commit_out": dg.MetadataValue.text(judged.commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(judged.commit, judged.path)),
    }
    # every score as a number, every time: the UI plots each one across batches
    for s in report.signals:
        if s.value is not None:
            metadata[f"signal/{s.name}"] = float(round(s.value, 5))
    if judged.holdout is not None:
        h = judged.holdout
        metadata["drift_test_set"] = dg.MetadataValue.md(
            f"{h.note}\n\nDrifted slices: " + (", ".join(
                f"`{s.label}` ({s.share_in_batch:.0%} of the batch, {s.share_elsewhere:.0%} elsewhere)"
                for s in h.drifted) or "none"))
        metadata["drift_test_utterances"] = h.test_utterances
        metadata["drift_test_speakers"] = h.test_speakers
    if judged.drifted:
        context.log.warning(f"drift in {batch}: {', '.join(report.fired)} (score {report.score:.2f})")
    return dg.MaterializeResult(metadata=metadata)
