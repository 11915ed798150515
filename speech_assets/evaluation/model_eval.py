"""Run a checkpoint over utterances and turn its outputs into evaluation rows, calibration and a report.

The only module of `evaluation` that touches a model, and only through the model-backend port
(`model.backend.backend_of(checkpoint).outputs`): CTC reads the stored features, Whisper the audio. The forward
pass and the search (the checkpoint's own decoder, as served) run once per split; temperatures only rescore the
confidences of the kept outputs, so fitting calibration costs no extra forward passes or searches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from speech_assets.evaluation.anchor import AnchorSet, compare_anchor, score_anchor
from speech_assets.evaluation.calibration import CalibrationReport, calibration_report, correctness, fit_temperature
from speech_assets.evaluation.promotion import PromotionDecision, PromotionPolicy, decide
from speech_assets.evaluation.report import AnchorSection, BaselineSummary, EvalReport, build_report
from speech_assets.features.dataset import Utterance
from speech_assets.model.backend import ModelOutputs as BackendOutputs
from speech_assets.model.backend import Sample, backend_of, load_recognizer
from speech_assets.model.ctc_backend import _ConfidenceTable  # noqa: F401  (its tests import it from here)


WaveformOf = Callable[[Utterance], np.ndarray]  # an utterance's audio (16 kHz mono float32), read on demand


@dataclass
class ModelOutputs:
    """A model's outputs on utterances (the backend's `ModelOutputs`), as evaluation rows at any temperature."""

    utterances: list[Utterance]
    outputs: BackendOutputs

    @property
    def decoder(self) -> str:
        return self.outputs.decoder

    @property
    def forward_seconds(self) -> float:
        return self.outputs.forward_seconds

    def rows(self, temperature: float) -> list[dict]:
        confidences = self.confidences(temperature)
        return [
            {
                "utterance_id": u.utt_id,
                "reference": u.text,
                "hypothesis": text,
                "confidence": float(c),
                "speaker": u.speaker,
                "batch_id": u.batch_id,  # picks a drift release's drift test set (evaluation.promotion)
                **u.subgroups,
            }
            for u, text, c in zip(self.utterances, self.outputs.texts(), confidences)
        ]

    def confidences(self, temperature: float) -> np.ndarray:
        return self.outputs.confidences(temperature)


def samples_of(utterances: list[Utterance], waveform_of: WaveformOf | None = None) -> list[Sample]:
    """The port's view of utterances: features always, audio when a reader is given (read only if the backend
    asks for it)."""
    return [
        Sample(u.utt_id, u.text, features=u.features, duration_s=u.duration_s,
               waveform=(lambda u=u: waveform_of(u)) if waveform_of is not None else None)
        for u in utterances
    ]


def run_model(
    checkpoint: bytes, utterances: list[Utterance], batch_size: int = 32, decoder: str | None = None,
    waveform_of: WaveformOf | None = None, progress=None,
) -> ModelOutputs:
    """One pass of the checkpoint's backend over `utterances` (CTC: `decoder` overrides its search); `progress`
    gets the backend's progress events (`model.contract.Progress`)."""
    backend = backend_of(checkpoint)
    kwargs = {"batch_size": batch_size, "decoder": decoder} if backend.name == "ctc" else {}
    return ModelOutputs(utterances, backend.outputs(checkpoint, samples_of(utterances, waveform_of),
                                                    progress=progress, **kwargs))


@dataclass
class Evaluation:
    report: EvalReport
    temperature: float
    rows: list[dict]  # challenger on test, at the temperature that ships (the fitted one, or 1 if it was rejected)
    ece: float  # challenger's, on test, as served (after calibration)
    champion_rows: list[dict] | None  # the champion on the same test utterances, as served
    champion_ece: float | None
    decoder: str = "greedy"  # how the challenger's hypotheses were searched
    anchor: AnchorSection | None = None  # both models (and the peer) on the real-speech anchor set

    @property
    def anchor_rows(self) -> list[dict] | None:
        return [dict(r) for r in self.anchor.challenger.rows] if self.anchor else None

    @property
    def champion_anchor_rows(self) -> list[dict] | None:
        return [dict(r) for r in self.anchor.champion.rows] if self.anchor and self.anchor.champion else None

    def decide(self, policy: PromotionPolicy | None = None) -> PromotionDecision:
        return decide(
            self.rows, challenger_ece=self.ece, champion_rows=self.champion_rows, champion_ece=self.champion_ece,
            policy=policy, anchor_rows=self.anchor_rows, champion_anchor_rows=self.champion_anchor_rows,
        )


def score_on_anchor(checkpoint: bytes, temperature: float, anchor: AnchorSet, *, model: str, seed: int = 0):
    """The model's transcripts of the anchor set as served (its recognizer, any backend), scored."""
    recognizer = load_recognizer(checkpoint, temperature=temperature)
    return score_anchor(lambda waves: [t.text for t in recognizer.transcribe_batch(waves)], anchor, model=model,
                        seed=seed)


def anchor_section(checkpoint: bytes, temperature: float, anchor: AnchorSet, *, model_id: str,
                   champion: tuple[bytes, float] | None, policy: PromotionPolicy, peer: bool, seed: int = 0
                   ) -> AnchorSection:
    """Challenger, champion and (when `peer`) pocketsphinx on the anchor set, with the paired comparison."""
    challenger = score_on_anchor(checkpoint, temperature, anchor, model=model_id, seed=seed)
    champ = (score_on_anchor(champion[0], champion[1], anchor, model="champion", seed=seed)
             if champion is not None else None)
    peer_result, peer_reason = None, ""
    if peer:
        from speech_assets.evaluation.baseline import BaselineUnavailable, transcribe_pocketsphinx

        try:
            peer_result = score_anchor(transcribe_pocketsphinx, anchor, model="pocketsphinx (en-us, as shipped)",
                                       seed=seed)
        except BaselineUnavailable as exc:
            peer_reason = str(exc)
    comparison = (compare_anchor(challenger, champ, tolerance=policy.anchor_wer_tolerance, seed=seed)
                  if champ is not None else None)
    return AnchorSection(challenger, champ, peer_result, peer_reason, comparison)


def ship_calibration(fitted_temperature: float, raw_rows: list[dict], fitted_rows: list[dict], *, tolerance: float,
                     dev_utterances: int) -> tuple[float, list[dict], CalibrationReport]:
    """The temperature that ships, the test rows at it, and the calibration report that says why.

    The temperature fitted on dev ships only if held-out (test) ECE with it is at most the raw confidences' ECE plus
    `tolerance`; otherwise the identity map (T = 1) ships and the report's parameters say the fit was rejected, with
    both ECEs. (Choosing between two maps on test is a one-bit selection: the reported ECE is at worst the smaller of
    two honest held-out figures.)"""
    correct = correctness(raw_rows)  # correctness does not depend on the temperature, only the confidences do
    raw = [r["confidence"] for r in raw_rows]
    fitted = calibration_report(raw, [r["confidence"] for r in fitted_rows], correct, method="temperature")
    params = {"fitted_on": "dev", "dev_utterances": dev_utterances, "tolerance": tolerance}
    if not fitted.ece_after > fitted.ece_before + tolerance:
        return fitted_temperature, fitted_rows, replace(fitted, parameters={"temperature": fitted_temperature, **params})
    rejected = (f"temperature {fitted_temperature:.3g} fit rejected: held-out ECE {fitted.ece_before:.4f} -> "
                f"{fitted.ece_after:.4f} (> +{tolerance:g}); shipping the identity map")
    report = calibration_report(raw, raw, correct, method="identity",
                                parameters={"temperature": 1.0, "rejected_temperature": fitted_temperature,
                                            "rejected_ece": fitted.ece_after, "why": rejected, **params})
    return 1.0, raw_rows, report


def evaluate(
    checkpoint: bytes,
    dev: list[Utterance],
    test: list[Utterance],
    *,
    model_id: str,
    data_commit: str,
    champion: tuple[bytes, float] | None = None,  # (checkpoint, its calibrated temperature)
    policy: PromotionPolicy | None = None,
    baseline: BaselineSummary | None = None,
    rtf=None,
    seed: int = 0,
    waveform_of: WaveformOf | None = None,
    anchor: AnchorSet | None = None,  # the real-speech anchor set: scored for both models when given
    anchor_peer: bool = False,  # also score pocketsphinx on it
    progress=None,  # the backends' progress events (decoding with an ETA)
) -> Evaluation:
    policy = policy or PromotionPolicy()
    dev_out = run_model(checkpoint, dev, waveform_of=waveform_of, progress=progress)
    test_out = run_model(checkpoint, test, waveform_of=waveform_of, progress=progress)

    # Calibration is fitted on dev and judged on test (held out), so the reported ECE is honest.
    dev_correct = correctness(dev_out.rows(1.0))
    fit = fit_temperature(dev_out.confidences, dev_correct)
    test_rows_raw = test_out.rows(1.0)
    temperature, test_rows, calib = ship_calibration(fit.temperature, test_rows_raw, test_out.rows(fit.temperature),
                                                     tolerance=policy.calibration_tolerance, dev_utterances=len(dev))
    section = (anchor_section(checkpoint, temperature, anchor, model_id=model_id, champion=champion,
                              policy=policy, peer=anchor_peer, seed=seed) if anchor is not None else None)
    report = build_report(
        test_rows, model_id=model_id, data_commit=data_commit, calibration=calib, rtf=rtf, baseline=baseline,
        anchor=section,
        min_utterances=policy.min_utterances, min_speakers=policy.min_speakers, seed=seed,
    )

    champion_rows, champion_ece = None, None
    if champion is not None:
        champ_ckpt, champ_temperature = champion
        champion_rows = run_model(champ_ckpt, test, waveform_of=waveform_of, progress=progress).rows(champ_temperature)
        conf = [r["confidence"] for r in champion_rows]
        champion_ece = calibration_report(conf, conf, correctness(champion_rows), method="none").ece_after
    return Evaluation(
        report, temperature, test_rows, calib.ece_after, champion_rows, champion_ece, test_out.decoder, section
    )
