"""`eval_report` (WER/CER with speaker-bootstrap CIs per slice, calibration, RTF, baseline) and the
blocking `promotion_gate` check that decides whether the challenger may be registered."""

from typing import Optional

import dagster as dg

from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.defs.training.assets import asr_checkpoint
from speech_assets.evaluation.run import DRIFT_BATCH_TAG, EvaluationSettings, evaluate_checkpoint, promotion_decision
from speech_assets.governance.policy import read_policy
from speech_assets.training.artifacts import MODEL_NAME, latest_checkpoint

OWNERS = ["team:speech-ml"]


class EvalConfig(dg.Config):
    """Evidence and gate settings. The gate's thresholds come from the release policy versioned in the store
    (`policy show`, section `gate`; defaults `PromotionPolicy`'s); one set here overrides it for this run."""

    min_utterances: Optional[int] = EvaluationSettings.min_utterances  # a slice smaller than this is not gated
    min_speakers: Optional[int] = EvaluationSettings.min_speakers
    wer_floor: Optional[float] = EvaluationSettings.wer_floor  # first model: overall WER (upper CI bound) under this
    slice_wer_floor: Optional[float] = EvaluationSettings.slice_wer_floor  # first model: every gated slice's WER
    max_ece: Optional[float] = EvaluationSettings.max_ece
    wer_tolerance: Optional[float] = EvaluationSettings.wer_tolerance  # how much worse than the champion, overall
    slice_wer_tolerance: Optional[float] = EvaluationSettings.slice_wer_tolerance
    ece_tolerance: Optional[float] = EvaluationSettings.ece_tolerance  # how much calibration error may rise
    calibration_tolerance: Optional[float] = EvaluationSettings.calibration_tolerance  # else the identity map ships
    bootstrap_resamples: int = EvaluationSettings.bootstrap_resamples
    seed: int = EvaluationSettings.seed
    baseline_utterances: int = EvaluationSettings.baseline_utterances  # pocketsphinx's sample (0 = skip)
    rtf_utterances: int = EvaluationSettings.rtf_utterances
    anchor: bool = EvaluationSettings.anchor  # score both models on the real-speech anchor set (gated with a champion)

    def to_domain(self) -> EvaluationSettings:
        return EvaluationSettings(**self.model_dump())


@dg.asset(
    group_name="evaluation",
    owners=OWNERS,
    tags={"layer": "silver", "domain": "evaluation"},
    kinds={"wav"},
    code_version="1",
    description=(
        "Real recorded speech as a fixed, versioned anchor set: the 11 recordings of Debian's pocketsphinx-testdata "
        "(5 card names, 5 LibriVox sentences, 1 command), canonical WAVs + a manifest with their sha256. Every "
        "eval_report scores both models on it; a smoke alarm for catastrophic forgetting, not a benchmark."
    ),
)
def anchor_set(context: dg.AssetExecutionContext, store: VersionStoreResource) -> dg.MaterializeResult:
    from speech_assets.evaluation.anchor import import_anchor_set, load_anchor_set, read_pocketsphinx_testdata

    vs, repo = store.open(), store.repository
    commit = import_anchor_set(vs, repo, read_pocketsphinx_testdata(), run_id=context.run.run_id)
    anchor = load_anchor_set(vs, repo, commit)
    return dg.MaterializeResult(metadata={
        "commit_out": dg.MetadataValue.text(commit),
        "set_digest": anchor.set_digest,
        "utterances": anchor.n_utterances,
        "words": anchor.n_words,
        "groups": dg.MetadataValue.md(
            "| group | utterances |\n|---|---:|\n" + "\n".join(
                f"| {g} | {sum(u.group == g for u in anchor.utterances)} |"
                for g in sorted({u.group for u in anchor.utterances}))),
    })


@dg.asset(
    deps=[asr_checkpoint, anchor_set],
    group_name="evaluation",
    owners=OWNERS,
    tags={"layer": "gold", "domain": "evaluation"},
    kinds={"torch", "html"},
    code_version="1",
    description=(
        "The latest checkpoint on the test split: WER/CER overall and per accent, channel, SNR band and duration "
        "band with speaker-level bootstrap 95 % CIs; temperature calibration fitted on dev with ECE before/after; "
        "real-time factor; pocketsphinx baseline where installed; the champion on the same utterances."
    ),
)
def eval_report(context: dg.AssetExecutionContext, config: EvalConfig, store: VersionStoreResource) -> dg.MaterializeResult:
    vs, repo = store.open(), store.repository
    run = evaluate_checkpoint(vs, repo, latest_checkpoint(vs, repo), read_policy(vs, repo), config.to_domain(),
                              model_name=MODEL_NAME, run_id=context.run.run_id, log=context.log,
                              drift_batch=context.run.tags.get(DRIFT_BATCH_TAG))
    report = run.report
    return dg.MaterializeResult(metadata={
        "commit_in": dg.MetadataValue.text(run.data_commit),
        "commit_out": dg.MetadataValue.text(run.commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(run.commit, run.pointer["html"])),
        "checkpoint_digest": run.checkpoint_digest,
        "test_utterances": report.n_utterances,
        "test_speakers": report.n_speakers,
        "wer": float(report.wer),
        "wer_ci_low": float(report.wer_ci[0]),
        "wer_ci_high": float(report.wer_ci[1]),
        "cer": float(report.cer),
        "ece_before": float(report.calibration.ece_before),
        "ece_after": float(report.calibration.ece_after),
        "temperature": float(run.evaluation.temperature),
        # "identity" when the fitted temperature made held-out ECE worse (the why is in the report)
        "calibration": dg.MetadataValue.text(str(report.calibration.parameters.get("why") or report.calibration.method)),
        "rtf": run.rtf_value,
        "champion_version": run.champion_version or "",
        # which release policy set the gate (and what a run config overrode), for the audit of a decision
        "release_policy_commit": dg.MetadataValue.text(run.policy_commit),
        "gate_overrides": dg.MetadataValue.json(run.gate_overrides),
        "report": dg.MetadataValue.md(report.markdown()),
        # The UI renders markdown images, so the plots show on the asset page itself (also in report.html).
        "plots": dg.MetadataValue.md(report.plots_markdown()),
        "decoder": run.evaluation.decoder,
        "excluded": dg.MetadataValue.json(run.pointer.get("excluded", {})),
        **{f"wer/{column}={value}": wer for (column, value), wer in run.slice_wers().items()},
        **({} if run.baseline_wer is None else {"baseline_wer": run.baseline_wer}),
        **_anchor_metadata(run.evaluation.anchor),
        **_drift_metadata(vs, repo, run.pointer),
    })


def _drift_metadata(vs, repo: str, pointer: dict) -> dict:
    """A drift release: its drift test set's slices before -> after (the gate's own rules), or what it lacks."""
    if not pointer.get("drift"):
        return {}
    from speech_assets.evaluation.promotion import drift_markdown

    _, decision = promotion_decision(vs, repo)
    return {"drift_batch": pointer["drift"]["batch_id"],
            "drift_test_set": dg.MetadataValue.md(drift_markdown(decision) or "no drift evidence"),
            "holds_for_approval": "; ".join(decision.holds) or "none"}


def _anchor_metadata(section) -> dict:
    if section is None:
        return {"anchor": "not scored (anchor=false, or the anchor_set asset was never materialized)"}
    out = {"anchor_utterances": section.challenger.n_utterances, "anchor_wer": float(section.challenger.wer)}
    if section.champion is not None:
        out["anchor_champion_wer"] = float(section.champion.wer)
    if section.peer is not None:
        out["anchor_pocketsphinx_wer"] = float(section.peer.wer)
    return out


@dg.asset_check(
    asset=eval_report,
    blocking=True,
    description=(
        "Challenger vs champion on the same test utterances: overall WER not confidently worse beyond its tolerance "
        "(paired speaker bootstrap), no gated subgroup worse beyond its tolerance, calibration not worse, not clearly "
        "worse on the real-speech anchor set. The first model must meet absolute floors (no free pass)."
    ),
)
def promotion_gate(store: VersionStoreResource) -> dg.AssetCheckResult:
    vs = store.open()
    pointer, decision = promotion_decision(vs, store.repository)
    return dg.AssetCheckResult(
        passed=decision.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "mode": decision.mode,
            "rules": len(decision.rules),
            "failed_rules": ", ".join(decision.failed_rules) or "none",
            # passed but held: the release waits for a named approval (evidence about its trigger was too thin)
            "holds_for_approval": "; ".join(decision.holds) or "none",
            "champion_version": pointer.get("champion_version") or "",
            "decision": dg.MetadataValue.md(decision.markdown()),
        },
    )
