"""`eval_report` (WER/CER with speaker-bootstrap CIs per slice, calibration, RTF, baseline) and the
blocking `promotion_gate` check that decides whether the challenger may be registered."""

import json
from typing import Optional

import dagster as dg
import numpy as np

from speech_assets.defs.storage.resources import VersionStoreResource
from speech_assets.defs.training.assets import asr_checkpoint
from speech_assets.evaluation.latency import measure_rtf
from speech_assets.evaluation.model_eval import Evaluation, evaluate
from speech_assets.evaluation.promotion import PromotionPolicy, decide
from speech_assets.evaluation.report import BaselineSummary, EvalReport, summarize_baseline
from speech_assets.features.dataset import load_examples
from speech_assets.features.logmel import FeatureConfig
from speech_assets.governance.policy import GATE_FIELDS, read_policy
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import DEFAULT_BRANCH
from speech_assets.training.artifacts import (
    EVALUATION_POINTER,
    MODEL_NAME,
    latest_checkpoint,
    parquet_bytes,
    read_parquet_rows,
)
from speech_assets.storage.publish import publish_objects

OWNERS = ["team:speech-ml"]


class EvalConfig(dg.Config):
    """Evidence and gate settings. The gate's thresholds come from the release policy versioned in the store
    (`policy show`, section `gate`; defaults `PromotionPolicy`'s); one set here overrides it for this run."""

    min_utterances: Optional[int] = None  # a slice smaller than this is reported, not gated
    min_speakers: Optional[int] = None
    wer_floor: Optional[float] = None  # first model: overall WER (upper CI bound) must be under this
    slice_wer_floor: Optional[float] = None  # first model: every gated slice's WER must be under this
    max_ece: Optional[float] = None
    wer_tolerance: Optional[float] = None  # challenger vs champion: overall WER may not be confidently worse by more
    slice_wer_tolerance: Optional[float] = None
    ece_tolerance: Optional[float] = None  # challenger vs champion: calibration error may not rise by more
    bootstrap_resamples: int = 1000
    seed: int = 0
    # pocketsphinx on this many test utterances (0 = skip); it runs at ~0.84x real time on 2 cores (measured),
    # so its sample is small and its size is printed beside its WER
    baseline_utterances: int = 20
    rtf_utterances: int = 20


def _waveforms(vs, repo, commit, utterances):
    from speech_assets.audio.decode import read_canonical_wav

    return [read_canonical_wav(vs.get_object(repo, commit, u.audio_path))[0] for u in utterances]


@dg.asset(
    deps=[asr_checkpoint],
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
    info, blob = latest_checkpoint(vs, repo)
    data_commit = info["lineage"]["data_commit"]
    examples = load_examples(vs, repo, data_commit, FeatureConfig(**info["lineage"]["feature_config"]), splits=("dev", "test"))
    dev, test = examples.splits["dev"], examples.splits["test"]
    context.log.info(f"evaluating checkpoint {info['digest'][:16]} on {len(test)} test utterances (dev {len(dev)})")

    registry = ModelRegistry(vs, repo)
    champion_version = registry.production(MODEL_NAME)
    champion = None
    if champion_version is not None:
        calib = registry.calibration(MODEL_NAME, champion_version.version)  # parsed JSON
        champion = (registry.checkpoint(MODEL_NAME, champion_version.version), float(calib.get("temperature", 1.0)))

    from speech_assets.model.inference import Transcriber

    # RTF and the baseline decode raw audio; batches whose audio the retention sweep removed have features only.
    from speech_assets.intake.manifest import swept_batches

    swept = swept_batches(vs, repo, data_commit)
    audible = [u for u in test if u.batch_id not in swept]
    rtf = None
    if config.rtf_utterances and audible:
        sample = audible[: config.rtf_utterances]
        transcriber = Transcriber.from_checkpoint(blob)
        rtf = measure_rtf(transcriber.transcribe, _waveforms(vs, repo, data_commit, sample))

    baseline = None
    if config.baseline_utterances and audible:
        from speech_assets.evaluation.baseline import BaselineUnavailable, transcribe_pocketsphinx

        sample = audible[: config.baseline_utterances]
        try:
            hyps = transcribe_pocketsphinx(_waveforms(vs, repo, data_commit, sample))
            rows = [{"utterance_id": u.utt_id, "reference": u.text, "hypothesis": h, "speaker": u.speaker} for u, h in zip(sample, hyps)]
            baseline = summarize_baseline("pocketsphinx (en-us, as shipped)", rows)
        except BaselineUnavailable as exc:
            baseline = BaselineSummary.unavailable("pocketsphinx", str(exc))

    release = read_policy(vs, repo)
    thresholds = {k: getattr(config, k) if getattr(config, k) is not None else getattr(release.policy.gate, k)
                  for k in GATE_FIELDS}
    overridden = sorted(k for k in GATE_FIELDS if getattr(config, k) is not None)
    context.log.info(
        f"gate thresholds from the release policy at {release.commit[:12]}"
        f"{' (stored)' if release.stored else ' (defaults)'}; run config overrides: {overridden or 'none'}"
    )
    policy = PromotionPolicy(**thresholds, n_resamples=config.bootstrap_resamples, seed=config.seed)
    ev: Evaluation = evaluate(
        blob, dev, test, model_id=info["digest"][:16], data_commit=data_commit, champion=champion, policy=policy,
        baseline=baseline, rtf=rtf, seed=config.seed,
    )
    report = ev.report
    prefix = f"evaluations/{info['digest'][:16]}"
    pointer = {
        "checkpoint_digest": info["digest"],
        "report": f"{prefix}/report.json",
        "html": f"{prefix}/report.html",
        "rows": f"{prefix}/rows.parquet",
        "champion_rows": f"{prefix}/champion_rows.parquet" if ev.champion_rows is not None else None,
        "champion_version": champion_version.version if champion_version else None,
        "temperature": ev.temperature,
        "ece": ev.ece,
        "champion_ece": ev.champion_ece,
        "policy": policy.to_dict(),
        "data_commit": data_commit,
    }
    objects = {
        pointer["report"]: report.to_json().encode(),
        pointer["html"]: report.html().encode(),
        pointer["rows"]: parquet_bytes(ev.rows),
        EVALUATION_POINTER: json.dumps(pointer, sort_keys=True, indent=1, default=str).encode(),
    }
    if ev.champion_rows is not None:
        objects[pointer["champion_rows"]] = parquet_bytes(ev.champion_rows)
    commit = publish_objects(
        vs, repo, objects, branch_prefix="eval", message=f"eval_report {info['digest'][:16]}",
        metadata={"run_id": context.run.run_id, "checkpoint_digest": info["digest"], "data_commit": data_commit},
    )

    metadata = {
        "commit_in": dg.MetadataValue.text(data_commit),
        "commit_out": dg.MetadataValue.text(commit),
        "dagster/uri": dg.MetadataValue.path(store.uri(commit, pointer["html"])),
        "checkpoint_digest": info["digest"],
        "test_utterances": report.n_utterances,
        "test_speakers": report.n_speakers,
        "wer": float(report.wer),
        "wer_ci_low": float(report.wer_ci[0]),
        "wer_ci_high": float(report.wer_ci[1]),
        "cer": float(report.cer),
        "ece_before": float(report.calibration.ece_before),
        "ece_after": float(report.calibration.ece_after),
        "temperature": float(ev.temperature),
        "rtf": float(rtf.rtf) if rtf else float("nan"),
        "champion_version": pointer["champion_version"] or "",
        # which release policy set the gate (and what a run config overrode), for the audit of a decision
        "release_policy_commit": dg.MetadataValue.text(release.commit),
        "gate_overrides": dg.MetadataValue.json({k: thresholds[k] for k in overridden}),
        "report": dg.MetadataValue.md(report.markdown()),
        # The UI renders markdown images, so the plots show on the asset page itself (also in report.html).
        "plots": dg.MetadataValue.md(report.plots_markdown()),
        "decoder": ev.decoder,
    }
    for s in report.slices:
        metadata[f"wer/{s.column}={s.value}"] = float(s.wer) if s.wer == s.wer else float("nan")
    if baseline is not None and getattr(baseline, "wer", None) is not None:
        metadata["baseline_wer"] = float(baseline.wer)
    return dg.MaterializeResult(metadata=metadata)


def load_evaluation(vs, repo) -> tuple[dict, list[dict], list[dict] | None]:
    pointer = json.loads(vs.get_object(repo, DEFAULT_BRANCH, EVALUATION_POINTER))
    rows = read_parquet_rows(vs.get_object(repo, DEFAULT_BRANCH, pointer["rows"]))
    champ = read_parquet_rows(vs.get_object(repo, DEFAULT_BRANCH, pointer["champion_rows"])) if pointer.get("champion_rows") else None
    return pointer, rows, champ


def promotion_decision(vs, repo):
    pointer, rows, champ = load_evaluation(vs, repo)
    policy = PromotionPolicy(**pointer["policy"]) if pointer.get("policy") else PromotionPolicy()
    return pointer, decide(rows, challenger_ece=pointer["ece"], champion_rows=champ, champion_ece=pointer.get("champion_ece"), policy=policy)


@dg.asset_check(
    asset=eval_report,
    blocking=True,
    description=(
        "Challenger vs champion on the same test utterances: overall WER not confidently worse beyond its tolerance "
        "(paired speaker bootstrap), no gated subgroup worse beyond its tolerance, calibration not worse. The first "
        "model must meet absolute floors (no free pass)."
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
            "champion_version": pointer.get("champion_version") or "",
            "decision": dg.MetadataValue.md(decision.markdown()),
        },
    )
