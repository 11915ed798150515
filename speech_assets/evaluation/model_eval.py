"""Run a checkpoint over stored features and turn its outputs into evaluation rows, calibration and a report.

The only module of `evaluation` that knows about the model: everything else here works on plain rows.
The forward pass and the search (the checkpoint's own decoder: lexicon + LM when it has one, as served) run
once per split; temperatures only rescore the confidences of the kept alignments, so fitting calibration costs
no extra forward passes or searches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from speech_assets.evaluation.calibration import calibration_report, correctness, fit_temperature
from speech_assets.evaluation.promotion import PromotionDecision, PromotionPolicy, decide
from speech_assets.evaluation.report import BaselineSummary, EvalReport, build_report
from speech_assets.features.dataset import Utterance
from speech_assets.model.decode import Hypothesis, _tokens_from_path, at_temperature, confidence_at
from speech_assets.model.inference import make_search
from speech_assets.model.train import load_checkpoint


@dataclass
class ModelOutputs:
    utterances: list[Utterance]
    logits: list[np.ndarray]  # [frames', vocab] per utterance, before temperature
    frame_shift_s: float
    forward_seconds: float
    hypotheses: list[Hypothesis]  # the search's output at temperature 1
    decoder: str
    search_seconds: float

    def _at(self, temperature: float) -> list[Hypothesis]:
        if temperature == 1.0:
            return self.hypotheses
        return [at_temperature(h, l, temperature, self.frame_shift_s) for h, l in zip(self.hypotheses, self.logits)]

    def rows(self, temperature: float) -> list[dict]:
        rows = []
        for u, hyp in zip(self.utterances, self._at(temperature)):
            rows.append(
                {
                    "utterance_id": u.utt_id,
                    "reference": u.text,
                    "hypothesis": hyp.text,
                    "confidence": float(hyp.confidence),
                    "speaker": u.speaker,
                    **u.subgroups,
                }
            )
        return rows

    def confidences(self, temperature: float) -> np.ndarray:
        """Every utterance's confidence at ``temperature`` (decode.confidence_at, vectorized over the split:
        calibration fitting calls this dozens of times)."""
        if temperature == 1.0:
            return np.asarray([h.confidence for h in self.hypotheses])
        if not hasattr(self, "_table"):
            self._table = _ConfidenceTable(self.hypotheses, self.logits)
        return self._table(temperature)


class _ConfidenceTable:
    """The score rows of every emitted token's frames, stacked once, so any temperature's confidences are a
    few array operations: log-softmax of those rows at T, each token's peak over its frames, the mean per
    utterance, exp.  Utterances with no tokens use the mean best posterior over all their frames."""

    def __init__(self, hypotheses: list[Hypothesis], logits: list[np.ndarray]):
        rows, labels, token_starts, utt_tokens, empty = [], [], [], [], []
        n_rows = 0
        for i, (h, l) in enumerate(zip(hypotheses, logits)):
            l = np.asarray(l, dtype=np.float64)
            tokens = _tokens_from_path(h.path) if h.path is not None else []
            if not tokens:
                empty.append((i, l))
                continue
            utt_tokens.append((i, len(tokens)))
            for tok, a, b in tokens:
                token_starts.append(n_rows)
                rows.append(l[a : b + 1])
                labels.extend([tok] * (b - a + 1))
                n_rows += b - a + 1
        self.n = len(hypotheses)
        self.rows = np.concatenate(rows) if rows else np.zeros((0, 1))
        self.labels = np.asarray(labels, dtype=np.int64)
        self.token_starts = np.asarray(token_starts, dtype=np.int64)
        self.utt_index = np.asarray([i for i, _ in utt_tokens], dtype=np.int64)
        counts = np.asarray([k for _, k in utt_tokens], dtype=np.int64)
        self.utt_counts = counts
        self.utt_starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64) if len(counts) else counts
        self.empty = empty

    def __call__(self, temperature: float) -> np.ndarray:
        out = np.zeros(self.n)
        if len(self.rows):
            z = self.rows / temperature
            zmax = z.max(axis=1, keepdims=True)
            lse = (zmax + np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)))[:, 0]
            token_lp = np.maximum.reduceat(z[np.arange(len(z)), self.labels] - lse, self.token_starts)
            mean = np.add.reduceat(token_lp, self.utt_starts) / self.utt_counts
            out[self.utt_index] = np.exp(mean)
        for i, l in self.empty:
            out[i] = confidence_at(Hypothesis("", [], 0.0, path=np.zeros(len(l), dtype=np.int64)), l, temperature)
        return np.clip(out, 0.0, 1.0)


def run_model(
    checkpoint: bytes, utterances: list[Utterance], batch_size: int = 32, decoder: str | None = None
) -> ModelOutputs:
    model, config, extra = load_checkpoint(checkpoint)
    model.eval()
    logits: list[np.ndarray | None] = [None] * len(utterances)
    order = sorted(range(len(utterances)), key=lambda i: utterances[i].features.shape[0])
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            lengths = torch.tensor([utterances[i].features.shape[0] for i in idx])
            batch = torch.zeros(len(idx), int(lengths.max()), utterances[idx[0]].features.shape[1])
            for row, i in enumerate(idx):
                batch[row, : lengths[row]] = torch.from_numpy(utterances[i].features)
            log_probs, out_lengths = model(batch, lengths)
            for row, i in enumerate(idx):
                logits[i] = log_probs[row, : out_lengths[row]].numpy().copy()
    forward_s = time.perf_counter() - started
    search = make_search(extra, decoder, frame_shift_s=config.frame_shift_s)
    started = time.perf_counter()
    hyps = [search(l) for l in logits]
    kind = decoder or (extra.get("decoder", {}).get("kind", "lexicon") if extra.get("decoder") else "greedy")
    return ModelOutputs(
        utterances, logits, config.frame_shift_s, forward_s, hyps, kind, time.perf_counter() - started  # type: ignore[arg-type]
    )


@dataclass
class Evaluation:
    report: EvalReport
    temperature: float
    rows: list[dict]  # challenger on test, at the fitted temperature
    ece: float  # challenger's, on test, as served (after calibration)
    champion_rows: list[dict] | None  # the champion on the same test utterances, as served
    champion_ece: float | None
    decoder: str = "greedy"  # how the challenger's hypotheses were searched

    def decide(self, policy: PromotionPolicy | None = None) -> PromotionDecision:
        return decide(
            self.rows, challenger_ece=self.ece, champion_rows=self.champion_rows, champion_ece=self.champion_ece,
            policy=policy,
        )


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
) -> Evaluation:
    policy = policy or PromotionPolicy()
    dev_out = run_model(checkpoint, dev)
    test_out = run_model(checkpoint, test)

    # Calibration is fitted on dev and judged on test (held out), so the reported ECE is honest.
    dev_correct = correctness(dev_out.rows(1.0))
    fit = fit_temperature(dev_out.confidences, dev_correct)
    test_rows_raw = test_out.rows(1.0)
    test_rows = test_out.rows(fit.temperature)
    test_correct = correctness(test_rows)
    calib = calibration_report(
        [r["confidence"] for r in test_rows_raw],
        [r["confidence"] for r in test_rows],
        test_correct,
        method="temperature",
        parameters={"temperature": fit.temperature, "fitted_on": "dev", "dev_utterances": len(dev)},
    )
    report = build_report(
        test_rows, model_id=model_id, data_commit=data_commit, calibration=calib, rtf=rtf, baseline=baseline,
        min_utterances=policy.min_utterances, min_speakers=policy.min_speakers, seed=seed,
    )

    champion_rows, champion_ece = None, None
    if champion is not None:
        champ_ckpt, champ_temperature = champion
        champion_rows = run_model(champ_ckpt, test).rows(champ_temperature)
        conf = [r["confidence"] for r in champion_rows]
        champion_ece = calibration_report(conf, conf, correctness(champion_rows), method="none").ece_after
    return Evaluation(
        report, fit.temperature, test_rows, calib.ece_after, champion_rows, champion_ece, test_out.decoder
    )
