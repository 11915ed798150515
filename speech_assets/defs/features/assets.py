"""`features[batch]`: 80-band log-mel per utterance and per-batch statistics, stored beside each other."""

import dagster as dg

from speech_assets.defs.intake.assets import raw_audio
from speech_assets.defs.intake.partitions import intake_batches
from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.features.logmel import FEATURE_CODE_VERSION, FeatureConfig
from speech_assets.features.store import compute_batch_features, feature_dir
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError
from speech_assets.storage.layout import metadata_path

# After its batch lands, unless the batch's blocking data contract failed (it never reached main).
FEATURES_AUTOMATION = (
    dg.AutomationCondition.eager()
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    )
).with_label("after its batch is published")


class FeatureAssetConfig(dg.Config):
    """The feature config (its digest names the feature set) and whether to recompute an unchanged batch."""

    n_fft: int = FeatureConfig.n_fft
    hop_length: int = FeatureConfig.hop_length
    n_mels: int = FeatureConfig.n_mels
    f_min: float = FeatureConfig.f_min
    f_max: float = FeatureConfig.f_max
    force: bool = False

    def to_domain(self) -> FeatureConfig:
        return FeatureConfig(**self.model_dump(exclude={"force"}))


@dg.asset(
    partitions_def=intake_batches,
    deps=[raw_audio],
    group_name="features",
    owners=["team:speech-ml"],
    tags={"layer": "silver", "domain": "features"},
    kinds={"torch", "numpy"},
    code_version=FEATURE_CODE_VERSION,
    automation_condition=FEATURES_AUTOMATION,
    description=(
        "80-band log-mel (torchaudio, batched) of every published utterance of the batch, with per-utterance "
        "offsets, and summary statistics (band means/variances/histograms, duration, SNR, speaking rate, "
        "clipping) that drift detection reads. Computed once per (batch content, feature config)."
    ),
)
def features(
    context: dg.AssetExecutionContext, config: FeatureAssetConfig, store: VersionStoreResource
) -> dg.MaterializeResult:
    vs = store.open()
    fconfig = config.to_domain()
    batch_id = context.partition_key
    try:
        vs.stat_object(store.repository, DEFAULT_BRANCH, metadata_path(batch_id))
    except NotFoundError:
        raise dg.Failure(f"batch {batch_id} is not published on main (did its data contract fail?)") from None
    result = compute_batch_features(
        vs, store.repository, batch_id, run_id=context.run.run_id, config=fconfig, force=config.force
    )
    context.log.info(
        f"{batch_id}: {'unchanged, skipped' if result.skipped else 'computed'} {result.utterances} utterances "
        f"with feature config {result.config_digest}"
    )
    stats = result.stats
    return dg.MaterializeResult(
        metadata={
            "feature_config_digest": result.config_digest,
            "skipped": result.skipped,
            "commit_in": dg.MetadataValue.text(result.read_commit),
            "commit_out": dg.MetadataValue.text(result.commit_id),
            "dagster/uri": dg.MetadataValue.path(store.uri(result.commit_id, feature_dir(fconfig, batch_id))),
            "utterances": result.utterances,
            "frames": result.frames,
            "audio_seconds": round(result.audio_seconds, 2),
            "audio_seconds_per_cpu_second": round(result.audio_seconds / result.cpu_seconds, 1)
            if result.cpu_seconds and not result.skipped
            else 0.0,
            "mean_duration_s": round(stats["duration"].get("mean", 0.0), 3),
            "mean_snr_db": round(stats["snr_db"].get("mean", 0.0), 2),
            "mean_speaking_rate_wps": round(stats["speaking_rate_wps"].get("mean", 0.0), 3),
            "clipping_rate": stats["clipping"]["mean_clipped_fraction"],
        }
    )
