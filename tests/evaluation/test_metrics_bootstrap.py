"""Edit counts, corpus WER/CER, speaker bootstrap, paired bootstrap, slices."""

from __future__ import annotations

import pyarrow as pa
import pytest

from speech_assets.evaluation.bootstrap import align_pairs, bootstrap_ci, paired_bootstrap, speaker_totals
from speech_assets.evaluation.metrics import (
    corpus_cer,
    corpus_wer,
    score_rows,
    utterance_counts,
    utterance_wer,
)
from speech_assets.evaluation.slices import MISSING, OVERALL, paired_slice_table, slice_table

from . import make_rows, with_error_rate

# ---------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, hyp, s, d, i, n",
    [
        ("the cat sat", "the cat sat", 0, 0, 0, 3),
        ("the cat sat", "the bat sat down", 1, 0, 1, 3),  # cat->bat, +down
        ("a b c d", "a c d", 0, 1, 0, 4),  # b deleted
        ("a b", "x y z", 2, 0, 1, 2),
        ("  the   cat ", "the cat", 0, 0, 0, 2),  # whitespace is not an error
        ("", "", 0, 0, 0, 0),
        ("", "hello there", 0, 0, 2, 0),  # words on silence are insertions
        ("hello", "", 0, 1, 0, 1),
        ("hello", None, 0, 1, 0, 1),  # no output = empty output
    ],
)
def test_word_counts_hand_computed(ref, hyp, s, d, i, n):
    c = utterance_counts(ref, hyp)
    assert (c["word_substitutions"], c["word_deletions"], c["word_insertions"], c["ref_words"]) == (s, d, i, n)


def test_char_counts_hand_computed():
    c = utterance_counts("abc", "abd")
    assert (c["char_substitutions"], c["char_deletions"], c["char_insertions"], c["ref_chars"]) == (1, 0, 0, 3)
    c = utterance_counts("ab cd", "ab  cd e")  # spaces count, but runs collapse
    assert (c["char_substitutions"], c["char_deletions"], c["char_insertions"], c["ref_chars"]) == (0, 0, 2, 5)


def test_corpus_wer_is_ratio_of_sums():
    rows = [
        {"reference": "the cat sat", "hypothesis": "the bat sat down"},  # 2 errors / 3
        {"reference": "a b c d", "hypothesis": "a c d"},  # 1 error / 4
    ]
    assert corpus_wer(rows) == pytest.approx(3 / 7)  # not mean(2/3, 1/4)
    assert corpus_cer([{"reference": "abc", "hypothesis": "abd"}, {"reference": "x", "hypothesis": "x"}]) == (
        pytest.approx(1 / 4)
    )


def test_empty_references():
    rows = [{"reference": "", "hypothesis": "uh huh"}, {"reference": "yes", "hypothesis": "yes"}]
    assert corpus_wer(rows) == pytest.approx(2 / 1)  # hallucination on silence is charged
    with pytest.raises(ValueError, match="undefined"):
        corpus_wer([{"reference": "", "hypothesis": ""}])
    scored = score_rows(rows)
    assert utterance_wer(scored[0]) == 1.0
    assert utterance_wer(score_rows([{"reference": "", "hypothesis": ""}])[0]) == 0.0
    with pytest.raises(ValueError):
        utterance_counts(None, "x")


def test_score_rows_accepts_arrow_and_trusts_only_its_own_counts():
    table = pa.Table.from_pylist([{"reference": "a b", "hypothesis": "a", "speaker": "s"}])
    scored = score_rows(table)
    assert scored[0]["word_deletions"] == 1
    assert score_rows(scored) is scored  # scored once, aggregated many times
    stored = pa.Table.from_pylist(scored)  # per-utterance results are Arrow-friendly
    # a copied row with an edited hypothesis must not keep stale counts
    edited = [r | {"hypothesis": "a b"} for r in scored]
    assert score_rows(edited)[0]["word_deletions"] == 0
    # a counts-only table (no text) is aggregated from its counts
    counts_only = stored.drop_columns(["reference", "hypothesis"])
    assert corpus_wer(counts_only) == pytest.approx(0.5)


# ---------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------


def test_speaker_totals_aggregate_per_speaker():
    rows = [
        {"speaker": "a", "reference": "x y", "hypothesis": "x"},
        {"speaker": "b", "reference": "x", "hypothesis": "z"},
        {"speaker": "a", "reference": "x y z", "hypothesis": "x y z"},
    ]
    ids, err, units = speaker_totals(rows)
    assert list(ids) == ["a", "b"]
    assert list(err) == [1, 1] and list(units) == [5, 1]


def test_ci_contains_estimate_and_is_deterministic():
    rows = score_rows(make_rows(speakers={"us": (40, 5, 0.1)}, seed=1))
    a = bootstrap_ci(rows, n_resamples=1000, seed=7)
    assert a.low <= a.estimate <= a.high
    assert a.estimate == pytest.approx(corpus_wer(rows))
    assert a.n_speakers == 40 and a.n_utterances == 200
    assert bootstrap_ci(rows, seed=7) == a
    assert bootstrap_ci(rows, seed=8) != a
    c = bootstrap_ci(rows, "cer", seed=7)
    assert c.low <= c.estimate <= c.high


def test_ci_narrows_with_more_speakers():
    few = bootstrap_ci(make_rows(speakers={"us": (20, 5, 0.1)}, seed=2))
    many = bootstrap_ci(make_rows(speakers={"us": (400, 5, 0.1)}, seed=2))
    assert (many.high - many.low) < 0.5 * (few.high - few.low)


def test_ci_respects_speaker_clustering():
    # half the speakers are recognized perfectly, half badly: utterances of one
    # speaker move together, so the effective sample size is the 20 speakers,
    # not the 1000 utterances
    rows = make_rows(speakers={"good": (10, 50, 0.0), "bad": (10, 50, 0.4)}, seed=3)
    clustered = bootstrap_ci(rows)
    # the same data treated as independent utterances (one "speaker" each)
    naive = bootstrap_ci([r | {"speaker": r["utterance_id"]} for r in rows])
    assert naive.estimate == pytest.approx(clustered.estimate)
    assert (clustered.high - clustered.low) > 3 * (naive.high - naive.low)


def test_single_speaker_interval_collapses():
    r = bootstrap_ci(make_rows(speakers={"us": (1, 20, 0.2)}))
    assert r.low == r.high == pytest.approx(r.estimate)


def test_missing_speaker_is_an_error():
    with pytest.raises(ValueError, match="speaker"):
        bootstrap_ci([{"reference": "a", "hypothesis": "a"}])


def test_paired_bootstrap_clearly_worse_excludes_zero():
    champion = make_rows(speakers={"us": (30, 5, 0.05)}, seed=4)
    challenger = with_error_rate(champion, {"us": 0.20}, seed=5)
    d = paired_bootstrap(challenger, champion)
    assert d.delta == pytest.approx(corpus_wer(challenger) - corpus_wer(champion))
    assert d.delta > 0.1
    assert d.low > 0  # confidently worse
    assert d.low <= d.delta <= d.high


def test_paired_bootstrap_identical_models_includes_zero():
    rows = make_rows(speakers={"us": (30, 5, 0.1)}, seed=6)
    d = paired_bootstrap(rows, [dict(r) for r in rows])
    assert d.delta == 0.0
    assert d.low <= 0.0 <= d.high


def test_paired_bootstrap_same_error_rate_includes_zero():
    champion = make_rows(speakers={"us": (30, 5, 0.1)}, seed=6)
    challenger = with_error_rate(champion, {"us": 0.1}, seed=9)
    d = paired_bootstrap(challenger, champion)
    assert d.low < 0.0 < d.high


def test_pairing_by_utterance_id_and_mismatch():
    rows = make_rows(speakers={"us": (3, 2, 0.1)})
    a, b = align_pairs(rows, list(reversed(rows)))
    assert [r["utterance_id"] for r in a] == [r["utterance_id"] for r in b]
    with pytest.raises(ValueError, match="same utterances"):
        align_pairs(rows, rows[:-1])
    other = [r | {"reference": "different words"} for r in rows]
    with pytest.raises(ValueError, match="not the same test utterance"):
        align_pairs(rows, other)


# ---------------------------------------------------------------------------
# slices
# ---------------------------------------------------------------------------


def test_slice_table_gates_only_large_enough_slices():
    rows = make_rows(speakers={"us": (10, 5, 0.05), "scottish": (2, 5, 0.3), "indian": (6, 4, 0.1)}, seed=10)
    rows[0]["duration_band"] = None  # missing values are grouped, not dropped
    table = slice_table(rows, n_resamples=200)
    by = {(s.column, s.value): s for s in table}
    assert table[0].column == OVERALL and table[0].n_utterances == 84 and table[0].gated
    assert by[("accent", "us")].gated  # 50 utterances, 10 speakers
    small = by[("accent", "scottish")]  # 10 utterances, 2 speakers: reported, not gated
    assert not small.gated and "10 utterances < 30" in small.note and "2 speakers < 3" in small.note
    assert small.wer > 0 and small.wer_ci[0] <= small.wer <= small.wer_ci[1]
    assert not by[("accent", "indian")].gated  # 24 utterances
    assert by[("duration_band", MISSING)].n_utterances == 1
    for col in ("accent", "channel", "snr_band", "duration_band"):
        assert sum(s.n_utterances for s in table if s.column == col) == 84
    assert table[0].wer == pytest.approx(corpus_wer(rows))


def test_paired_slice_table_finds_the_worse_accent():
    champion = make_rows(speakers={"us": (10, 5, 0.05), "indian": (10, 5, 0.05)}, seed=11)
    challenger = with_error_rate(champion, {"us": 0.05, "indian": 0.25}, seed=12)
    deltas = {(d.column, d.value): d for d in paired_slice_table(challenger, champion, n_resamples=300)}
    assert deltas[("accent", "indian")].result.low > 0.05
    assert deltas[("accent", "us")].result.low < 0.02
