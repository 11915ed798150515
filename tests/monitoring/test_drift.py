"""Drift signals on per-batch statistics: quiet on the training population, loud on a new accent and a
telephone channel, honest about small batches."""

from __future__ import annotations

import numpy as np
import pytest

from speech_assets.features.stats import batch_stats
from speech_assets.monitoring.drift import (
    DriftConfig,
    build_reference,
    chi2_homogeneity,
    confidence_histogram,
    drift_report,
    js_distance,
    psi,
)

WORDS = "turn on the lights set a timer for ten minutes play some music what is the weather".split()


def _batch(seed: int, n: int, accents=("us", "gb"), channel_mix=(("clean", 0.8), ("noisy", 0.2)),
           telephone: bool = False, words=WORDS):
    rng = np.random.default_rng(seed)
    feats, rows = [], []
    names, weights = zip(*channel_mix)
    for i in range(n):
        channel = rng.choice(names, p=np.asarray(weights) / sum(weights))
        frames = int(rng.integers(150, 400))
        base = rng.normal(-4.0, 2.0, size=(frames, 80)).astype(np.float32)
        if channel == "telephone":  # band-limited: no energy above ~3.4 kHz (the top mel bands)
            base[:, 55:] = rng.normal(-13.0, 0.5, size=(frames, 25))
        feats.append(base)
        text = " ".join(rng.choice(words, size=int(rng.integers(3, 8))))
        rows.append({"duration_s": frames / 100, "snr_db": float(rng.normal(30 if channel == "clean" else 12, 3)),
                     "text": text, "clipped_fraction": 0.0,
                     "original_sample_rate": 8000 if channel == "telephone" else 16000,
                     "original_format": "WAV", "accent": str(rng.choice(accents)), "channel": str(channel)})
    return batch_stats(feats, rows)


@pytest.fixture(scope="module")
def reference():
    return build_reference(_batch(s, 120) for s in range(5))


def test_distances_and_test_behave():
    assert js_distance([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-9)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert psi([10, 10], [10, 10]) == pytest.approx(0.0, abs=1e-9) and psi([19, 1], [1, 19]) > 1.0
    assert chi2_homogeneity([50, 50], [500, 500]) > 0.5
    assert chi2_homogeneity([90, 10], [500, 500]) < 1e-6
    assert confidence_histogram([0.05, 0.95, 1.0]) == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]


def test_reference_adds_batches_up(reference):
    assert reference["batches"] == 5 and reference["utterances"] == 600
    assert sum(reference["hist"]["duration"]) == 600
    assert set(reference["subgroups"]["accent"]) == {"us", "gb"}
    assert len(reference["band_mean"]) == 80 and all(s > 0 for s in reference["band_std"])


def test_the_training_population_does_not_drift(reference):
    report = drift_report("day-05", _batch(99, 150), reference)
    assert not report.drifted, report.markdown()
    assert report.score < 1.0


def test_a_new_accent_and_a_telephone_channel_drift(reference):
    stats = _batch(7, 150, accents=("us", "caribbean"), channel_mix=(("clean", 0.5), ("telephone", 0.5)),
                   telephone=True)
    report = drift_report("day-06", stats, reference)
    fired = set(report.fired)
    assert {"unseen_accent_share", "unseen_channel_share", "logmel_bands_js", "sample_rate_mix_js"} <= fired, report.markdown()
    assert "accent=caribbean (new)" in fired and "channel=telephone (new)" in fired
    assert report.score > 1.0 and "**DRIFT**" in report.markdown()


def test_new_words_raise_the_oov_rate(reference):
    stats = _batch(8, 100, words=["quantum", "flux", "capacitor", "turn", "on"])
    signal = {s.name: s for s in drift_report("x", stats, reference).signals}["oov_rate_excess"]
    assert signal.status == "drift" and signal.value > 0.5 and "quantum" in signal.detail


def test_small_batches_are_insufficient_not_drift(reference):
    stats = _batch(9, 12, accents=("caribbean",), channel_mix=(("telephone", 1.0),), telephone=True)
    report = drift_report("tiny", stats, reference, DriftConfig(min_utterances=30))
    assert not report.drifted
    assert {s.status for s in report.signals} == {"insufficient"} and report.score == 0.0


def test_the_served_models_confidence_falls(reference):
    rng = np.random.default_rng(0)
    usual = rng.uniform(0.75, 1.0, size=600)
    ref = {**reference, "confidence_hist": confidence_histogram(usual), "confidence_mean": float(usual.mean())}
    low = rng.uniform(0.3, 0.7, size=150)
    signals = {s.name: s for s in drift_report("x", _batch(10, 150), ref, confidences=low).signals}
    assert signals["confidence_drop"].status == "drift" and signals["confidence_psi"].status == "drift"
    same = rng.uniform(0.75, 1.0, size=150)
    signals = {s.name: s for s in drift_report("x", _batch(10, 150), ref, confidences=same).signals}
    assert signals["confidence_drop"].status == "ok"


def test_sparse_bins_are_merged_by_the_references_expectation():
    from speech_assets.monitoring.drift import coarsen

    b, r = coarsen([1, 0, 2, 0, 0, 7], [100, 100, 100, 100, 100, 500], min_expected=2.5)
    assert sum(b) == 10 and sum(r) == 1000 and len(b) < 6
    assert all(x / 1000 * 10 >= 2.5 for x in r)
