"""One evaluation of a checkpoint, from its features to the stored report and gate inputs: what `eval_report` runs.

    run = evaluate_checkpoint(store, repo, latest_checkpoint(store, repo), read_policy(store, repo),
                              EvaluationSettings(), model_name="asr", run_id=run_id, log=logger)
    pointer, decision = promotion_decision(store, repo)     # the promotion gate, on what the run stored

The run scores the checkpoint on the test split at its training data commit (WER/CER per slice with speaker
bootstrap CIs, temperature calibration fitted on dev, real-time factor and the pocketsphinx baseline on the audio
the retention sweep left), scores the registry's production model on the same utterances, and publishes the
report, the rows and the evaluation pointer (`storage.layout.EVALUATION_POINTER`) in one commit. The gate's
thresholds are the release policy's, each overridable per run. No Dagster here; the checkpoint and the release
policy are read by the caller (training and governance sit beside and above this package).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, fields
from typing import Any, Optional

from speech_assets.evaluation.latency import RTFResult, measure_rtf
from speech_assets.evaluation.model_eval import Evaluation, evaluate
from speech_assets.evaluation.promotion import DriftScope, PromotionDecision, PromotionPolicy, decide
from speech_assets.evaluation.report import BaselineSummary, EvalReport, summarize_baseline
from speech_assets.features.dataset import load_examples
from speech_assets.features.logmel import FeatureConfig
from speech_assets.registry.registry import ModelRegistry
from speech_assets.progress import progress_logger
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.layout import EVALUATION_POINTER, evaluation_paths
from speech_assets.storage.publish import publish_objects

_log = logging.getLogger(__name__)

# The run tag the retrain sensor sets on a drift-triggered retrain: the batch whose drift test set judges it.
DRIFT_BATCH_TAG = "speech_assets/drift_batch"


def drift_scope(store: VersionStore, repo: str, data_commit: str, drift_batch: str | None) -> DriftScope | None:
    """The gate's view of a drift trigger: the batch's stored drift test set (`intake.holdout`) at the data
    commit the checkpoint trained on; `recorded=False` when none was stored (the gate then holds)."""
    if not drift_batch:
        return None
    from speech_assets.intake.holdout import read_holdout

    plan = read_holdout(store, repo, data_commit, drift_batch)
    if plan is None:
        return DriftScope(drift_batch, recorded=False, note=f"no holdout record for {drift_batch} at "
                                                            f"{data_commit[:12]}")
    return DriftScope(drift_batch, tuple((s.column, s.value) for s in plan.drifted), True, plan.note)


@dataclass(frozen=True)
class EvaluationSettings:
    """Evidence and gate settings of one evaluation. A gate threshold left None is the release policy's."""

    min_utterances: Optional[int] = None  # a slice smaller than this is reported, not gated
    min_speakers: Optional[int] = None
    wer_floor: Optional[float] = None  # first model: overall WER (upper CI bound) must be under this
    slice_wer_floor: Optional[float] = None  # first model: every gated slice's WER must be under this
    max_ece: Optional[float] = None
    wer_tolerance: Optional[float] = None  # challenger vs champion: overall WER may not be confidently worse by more
    slice_wer_tolerance: Optional[float] = None
    ece_tolerance: Optional[float] = None  # challenger vs champion: calibration error may not rise by more
    calibration_tolerance: Optional[float] = None  # the fitted map may not raise held-out ECE by more (else identity)
    bootstrap_resamples: int = PromotionPolicy.n_resamples
    seed: int = PromotionPolicy.seed
    # pocketsphinx on this many test utterances (0 = skip); it runs at ~0.84x real time on 2 cores (measured),
    # so its sample is small and its size is printed beside its WER
    baseline_utterances: int = 20
    rtf_utterances: int = 20
    # score both models on the real-speech anchor set (`anchor_set` asset); with a champion the gate then requires
    # that evidence and refuses a challenger clearly worse on it (catastrophic forgetting). pocketsphinx is scored
    # on it too when baseline_utterances > 0.
    anchor: bool = True

    def thresholds(self, gate) -> dict[str, Any]:
        """The gate's thresholds: `gate`'s (a `governance.policy.GatePolicy`, in its field order), with every one
        set here in its place."""
        return {f.name: getattr(self, f.name) if getattr(self, f.name) is not None else getattr(gate, f.name)
                for f in fields(gate)}

    def overridden(self, gate) -> list[str]:
        """The gate thresholds this run sets itself, sorted."""
        return sorted(f.name for f in fields(gate) if getattr(self, f.name) is not None)


@dataclass(frozen=True)
class EvaluationRun:
    """What one evaluation found and where it stored it."""

    checkpoint_digest: str
    data_commit: str
    commit: str  # main after the report, rows and pointer were merged
    pointer: dict  # what EVALUATION_POINTER now says (paths, calibration, the gate's policy)
    evaluation: Evaluation
    rtf: RTFResult | None
    baseline: BaselineSummary | None
    policy_commit: str  # the main commit whose release policy set the gate
    gate_overrides: dict  # threshold -> value, for each one the run config set

    @property
    def report(self) -> EvalReport:
        return self.evaluation.report

    @property
    def champion_version(self) -> str | None:
        return self.pointer["champion_version"]

    @property
    def rtf_value(self) -> float:
        return float(self.rtf.rtf) if self.rtf else float("nan")

    @property
    def baseline_wer(self) -> float | None:
        wer = getattr(self.baseline, "wer", None) if self.baseline is not None else None
        return float(wer) if wer is not None else None

    def slice_wers(self) -> dict[tuple[str, str], float]:
        """(column, value) -> WER of every slice of the report (NaN where a slice had no words)."""
        return {(s.column, s.value): float(s.wer) if s.wer == s.wer else float("nan") for s in self.report.slices}


def _rows_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _read_rows(data: bytes) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()


def _waveforms(store: VersionStore, repo: str, commit: str, utterances) -> list:
    from speech_assets.features.dataset import read_audio

    return [read_audio(store, repo, commit, u.audio_path) for u in utterances]


def _champion(registry: ModelRegistry, model_name: str):
    """The production version and (its checkpoint, its calibrated temperature), or (None, None)."""
    version = registry.production(model_name)
    if version is None:
        return None, None
    calib = registry.calibration(model_name, version.version)  # parsed JSON
    return version, (registry.checkpoint(model_name, version.version), float(calib.get("temperature", 1.0)))


def _rtf(store, repo, commit, blob: bytes, audible: list, n: int) -> RTFResult | None:
    if not (n and audible):
        return None
    from speech_assets.model.backend import load_recognizer

    recognizer = load_recognizer(blob)
    return measure_rtf(recognizer.transcribe, _waveforms(store, repo, commit, audible[:n]))


def _baseline(store, repo, commit, audible: list, n: int) -> BaselineSummary | None:
    if not (n and audible):
        return None
    from speech_assets.evaluation.baseline import BaselineUnavailable, transcribe_pocketsphinx

    sample = audible[:n]
    try:
        hyps = transcribe_pocketsphinx(_waveforms(store, repo, commit, sample))
    except BaselineUnavailable as exc:
        return BaselineSummary.unavailable("pocketsphinx", str(exc))
    rows = [{"utterance_id": u.utt_id, "reference": u.text, "hypothesis": h, "speaker": u.speaker}
            for u, h in zip(sample, hyps)]
    return summarize_baseline("pocketsphinx (en-us, as shipped)", rows)


def evaluate_checkpoint(
    store: VersionStore, repo: str, checkpoint: tuple[dict, bytes], release, settings: EvaluationSettings, *,
    model_name: str, run_id: str, log: logging.Logger = _log, drift_batch: str | None = None,
) -> EvaluationRun:
    """Evaluate `checkpoint` (`training.artifacts.latest_checkpoint`'s record and bytes) against the production
    model of `model_name` and publish the result; `release` is the release policy as read from the store
    (`governance.policy.read_policy`: its `.policy.gate`, `.commit`, `.stored`). `drift_batch`: the release was
    triggered by drift in that batch (the run's `DRIFT_BATCH_TAG`): the gate judges it on its drift test set."""
    info, blob = checkpoint
    data_commit = info["lineage"]["data_commit"]
    fconfig = FeatureConfig(**info["lineage"]["feature_config"])
    examples = load_examples(store, repo, data_commit, fconfig, splits=("dev", "test"))
    dev, test = examples.splits["dev"], examples.splits["test"]
    champion_version, champion = _champion(ModelRegistry(store, repo), model_name)

    # RTF, the baseline and every backend but CTC read raw audio; batches whose audio the retention sweep removed
    # have features only: a model that reads audio is judged (with its champion) on the audible utterances only
    from speech_assets.intake.manifest import swept_batches
    from speech_assets.model.backend import backend_name_of

    swept = swept_batches(store, repo, data_commit)
    audible = [u for u in test if u.batch_id not in swept]
    backends = {backend_name_of(blob)} | ({backend_name_of(champion[0])} if champion else set())
    excluded = {}
    if backends != {"ctc"}:
        excluded = {"audio_swept": len(test) - len(audible) + sum(u.batch_id in swept for u in dev)}
        test, dev = audible, [u for u in dev if u.batch_id not in swept]
    log.info(f"evaluating checkpoint {info['digest'][:16]} on {len(test)} test utterances (dev {len(dev)}); "
             f"backends {'/'.join(sorted(backends))}; excluded {excluded or 'none'}")

    def waveform_of(u):
        return _waveforms(store, repo, data_commit, [u])[0]

    rtf = _rtf(store, repo, data_commit, blob, audible, settings.rtf_utterances)
    baseline = _baseline(store, repo, data_commit, audible, settings.baseline_utterances)

    gate = release.policy.gate
    thresholds, overridden = settings.thresholds(gate), settings.overridden(gate)
    log.info(
        f"gate thresholds from the release policy at {release.commit[:12]}"
        f"{' (stored)' if release.stored else ' (defaults)'}; run config overrides: {overridden or 'none'}"
    )
    policy = PromotionPolicy(**thresholds, n_resamples=settings.bootstrap_resamples, seed=settings.seed,
                             require_anchor=settings.anchor)
    anchor = _anchor_set(store, repo, log) if settings.anchor else None
    ev = evaluate(
        blob, dev, test, model_id=info["digest"][:16], data_commit=data_commit, champion=champion, policy=policy,
        baseline=baseline, rtf=rtf, seed=settings.seed, waveform_of=waveform_of, anchor=anchor,
        anchor_peer=settings.baseline_utterances > 0, progress=progress_logger(log, "evaluation"),
    )
    paths = evaluation_paths(info["digest"])
    pointer = {
        "checkpoint_digest": info["digest"],
        "report": paths["report"],
        "html": paths["html"],
        "rows": paths["rows"],
        "champion_rows": paths["champion_rows"] if ev.champion_rows is not None else None,
        "anchor_rows": paths["anchor_rows"] if ev.anchor is not None else None,
        "anchor_commit": anchor.commit if anchor is not None else None,
        "champion_version": champion_version.version if champion_version else None,
        "temperature": ev.temperature,
        "calibration_method": ev.report.calibration.method,  # "temperature", or "identity" when the fit was rejected
        "ece": ev.ece,
        "champion_ece": ev.champion_ece,
        "policy": policy.to_dict(),
        "data_commit": data_commit,
        "excluded": {**examples.excluded, **excluded},  # reason -> utterances not evaluated (shown in the UI)
    }
    scope = drift_scope(store, repo, data_commit, drift_batch)
    if scope is not None:
        pointer["drift"] = scope.to_dict()
        n = sum(u.batch_id == drift_batch for u in test)
        log.info(f"drift release: judged on {drift_batch}'s drift test set too ({n} test utterances of the batch; "
                 f"drifted slices {', '.join(f'{c}={v}' for c, v in scope.slices) or 'none'})")
    objects = {
        pointer["report"]: ev.report.to_json().encode(),
        pointer["html"]: ev.report.html().encode(),
        pointer["rows"]: _rows_bytes(ev.rows),
        EVALUATION_POINTER: json.dumps(pointer, sort_keys=True, indent=1, default=str).encode(),
    }
    if ev.champion_rows is not None:
        objects[pointer["champion_rows"]] = _rows_bytes(ev.champion_rows)
    if ev.anchor is not None:
        objects[pointer["anchor_rows"]] = _rows_bytes(
            [{**r, "role": "challenger"} for r in ev.anchor_rows]
            + [{**r, "role": "champion"} for r in (ev.champion_anchor_rows or [])])
    commit = publish_objects(
        store, repo, objects, branch_prefix="eval", message=f"eval_report {info['digest'][:16]}",
        metadata={"run_id": run_id, "checkpoint_digest": info["digest"], "data_commit": data_commit},
    )
    return EvaluationRun(info["digest"], data_commit, commit, pointer, ev, rtf, baseline, release.commit,
                         {k: thresholds[k] for k in overridden})


# -- the promotion gate's inputs: what the latest evaluation stored ---------------------------------------
def load_evaluation(store: VersionStore, repo: str) -> tuple[dict, list[dict], list[dict] | None]:
    """The evaluation pointer on main, the challenger's rows and the champion's (None without a champion)."""
    pointer = json.loads(store.get_object(repo, DEFAULT_BRANCH, EVALUATION_POINTER))
    rows = _read_rows(store.get_object(repo, DEFAULT_BRANCH, pointer["rows"]))
    champ = (_read_rows(store.get_object(repo, DEFAULT_BRANCH, pointer["champion_rows"]))
             if pointer.get("champion_rows") else None)
    return pointer, rows, champ


def load_anchor_rows(store: VersionStore, repo: str, pointer: dict) -> tuple[list[dict] | None, list[dict] | None]:
    """(challenger's, champion's) rows on the real-speech anchor set, as the evaluation stored them."""
    if not pointer.get("anchor_rows"):
        return None, None
    rows = _read_rows(store.get_object(repo, DEFAULT_BRANCH, pointer["anchor_rows"]))
    by_role = {role: [{k: v for k, v in r.items() if k != "role"} for r in rows if r["role"] == role]
               for role in ("challenger", "champion")}
    return by_role["challenger"], by_role["champion"] or None


def promotion_decision(store: VersionStore, repo: str) -> tuple[dict, PromotionDecision]:
    """The promotion gate's decision on the latest evaluation, under the policy that evaluation recorded."""
    pointer, rows, champ = load_evaluation(store, repo)
    anchor_rows, champion_anchor_rows = load_anchor_rows(store, repo, pointer)
    policy = PromotionPolicy.from_dict(pointer["policy"]) if pointer.get("policy") else PromotionPolicy()
    return pointer, decide(rows, challenger_ece=pointer["ece"], champion_rows=champ,
                           champion_ece=pointer.get("champion_ece"), policy=policy, anchor_rows=anchor_rows,
                           champion_anchor_rows=champion_anchor_rows, drift=DriftScope.from_dict(pointer.get("drift")))


def _anchor_set(store: VersionStore, repo: str, log: logging.Logger):
    """The real-speech anchor set on main, or None (and a warning saying what to run) when it was never imported."""
    from speech_assets.evaluation.anchor import AnchorSetUnavailable, load_anchor_set

    try:
        anchor = load_anchor_set(store, repo, DEFAULT_BRANCH)
    except AnchorSetUnavailable:
        log.warning("the real-speech anchor set is not in the store: materialize the anchor_set asset "
                    "(with a champion, the gate refuses a challenger without this evidence)")
        return None
    log.info(f"real-speech anchor set: {anchor.n_utterances} utterances at {anchor.commit[:12]} "
             f"(a smoke alarm, not a benchmark)")
    return anchor
