"""The vectorized confidences used to fit calibration equal the per-utterance definition at every temperature."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speech_assets.evaluation.model_eval import _ConfidenceTable
from speech_assets.model.decode import confidence_at, greedy_decode
from speech_assets.model.tokenizer import VOCAB_SIZE


def test_confidence_table_matches_confidence_at_including_empty_hypotheses():
    rng = np.random.default_rng(0)
    logits = [torch.log_softmax(torch.tensor(rng.normal(0, 3, (n, VOCAB_SIZE))), -1).numpy() for n in (30, 5, 50)]
    blank_only = np.zeros((7, VOCAB_SIZE))
    blank_only[:, 0] = 10.0  # the model is sure nothing was said
    logits.append(torch.log_softmax(torch.tensor(blank_only), -1).numpy())
    hyps = [greedy_decode(l) for l in logits]
    assert hyps[-1].text == "" and all(h.text for h in hyps[:-1])
    table = _ConfidenceTable(hyps, logits)
    for t in (0.5, 1.0, 1.3, 3.0):
        expected = [confidence_at(h, l, t) for h, l in zip(hyps, logits)]
        assert table(t) == pytest.approx(expected, rel=1e-9, abs=1e-12)
