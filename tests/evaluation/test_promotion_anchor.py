"""The promotion gate's real-speech anchor rule: applied by `decide` when anchor rows are given, old calls unchanged.

The anchor rows here are synthetic (the anchor's 11 transcripts, hypotheses made up), so these tests need neither
the pocketsphinx-testdata package nor a store.
"""

from __future__ import annotations

import json

import pytest

from speech_assets.evaluation.anchor import compare_anchor, result_from_rows
from speech_assets.evaluation.metrics import score_rows
from speech_assets.evaluation.promotion import PromotionPolicy, decide, rule_anchor_no_regression
from speech_assets.evaluation.report import AnchorSection, EvalReport, build_report

from . import make_rows, with_error_rate

FAST = PromotionPolicy(n_resamples=400)
SPEAKERS = {"us": (20, 8, 0.04), "indian": (10, 8, 0.04), "uk": (10, 8, 0.04)}

TEXTS = {
    "ps-cards-001": ("cards", "ten of clubs"),
    "ps-cards-002": ("cards", "four queen of clubs"),
    "ps-cards-003": ("cards", "seven of clubs"),
    "ps-cards-004": ("cards", "five five"),
    "ps-cards-005": ("cards", "eight of spades four of clubs seven of hearts"),
    "ps-librivox-0870": ("librivox", "and mister john dashwood had then leisure to consider how much there might be "
                                     "prudently in his power to do for them"),
    "ps-librivox-0880": ("librivox", "he was not an ill disposed young man"),
    "ps-librivox-0890": ("librivox", "unless to be rather cold hearted and rather selfish is to be ill disposed"),
    "ps-librivox-0920": ("librivox", "had he married a more a amiable woman he might have been made still more "
                                     "respectable than he was"),
    "ps-librivox-0930": ("librivox", "he might even have been made amiable himself"),
    "ps-goforward": ("goforward", "go forward ten meters"),
}


def anchor_rows(hyp=lambda ref: ref) -> list[dict]:
    return [{"utterance_id": u, "group": g, "reference": t, "hypothesis": hyp(t), "speaker": u}
            for u, (g, t) in TEXTS.items()]


PERFECT = anchor_rows()
COLLAPSED = anchor_rows(lambda ref: " ".join(ref.split()[:1]))  # forgot real speech: one word per utterance
ONE_WORD = [dict(r) for r in PERFECT]
ONE_WORD[5]["hypothesis"] = ONE_WORD[5]["hypothesis"].replace("leisure", "pleasure")


@pytest.fixture(scope="module")
def champion():
    return score_rows(make_rows(speakers=SPEAKERS, seed=21))


@pytest.fixture(scope="module")
def challenger(champion):
    # noise-level different on the simulated test set: passes every existing rule
    return with_error_rate(champion, dict.fromkeys(SPEAKERS, 0.04), seed=27)


def rules_of(decision):
    return {r.name: r for r in decision.rules}


def test_old_calls_decide_exactly_as_before(champion, challenger):
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST)
    assert "anchor_wer_no_regression" not in rules_of(d)
    assert d.passed and not any("anchor" in n for n in d.notes)
    first = decide(champion, challenger_ece=0.05, policy=FAST)
    assert "anchor_wer_no_regression" not in rules_of(first) and first.passed


def test_a_collapse_on_real_speech_fails_the_gate_even_when_simulated_speech_is_fine(champion, challenger):
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST,
               anchor_rows=COLLAPSED, champion_anchor_rows=PERFECT)
    assert not d.passed and d.failed_rules == ["anchor_wer_no_regression"]
    r = rules_of(d)["anchor_wer_no_regression"]
    assert "clearly worse" in r.detail and "n=11 utterances" in r.detail and "smoke alarm" in r.detail
    assert r.evidence["tolerance"] == 0.05 and r.evidence["n_utterances"] == 11 and r.evidence["low"] > 0.05


def test_a_one_word_difference_passes(champion, challenger):
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST,
               anchor_rows=ONE_WORD, champion_anchor_rows=PERFECT)
    r = rules_of(d)["anchor_wer_no_regression"]
    assert r.passed and d.passed and "not clearly worse" in r.detail


def test_the_policy_tolerance_decides(champion, challenger):
    # a one-word loss on one utterance: every resample without that utterance has delta 0, so the lower bound is
    # 0 and even a zero tolerance passes (the rule fails only a lower bound *above* the tolerance)
    strict = PromotionPolicy(n_resamples=400, anchor_wer_tolerance=0.0)
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=strict,
               anchor_rows=ONE_WORD, champion_anchor_rows=PERFECT)
    r = rules_of(d)["anchor_wer_no_regression"]
    assert r.passed and r.evidence["low"] == 0.0 and r.evidence["tolerance"] == 0.0
    # a tolerance above the collapse's whole interval lets even the collapse through: the threshold is the policy's
    lenient = PromotionPolicy(n_resamples=400, anchor_wer_tolerance=0.99)
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=lenient,
               anchor_rows=COLLAPSED, champion_anchor_rows=PERFECT)
    assert rules_of(d)["anchor_wer_no_regression"].passed


def test_without_a_champion_the_anchor_is_reported_not_gated(champion):
    d = decide(champion, challenger_ece=0.05, policy=FAST, anchor_rows=COLLAPSED)
    assert "anchor_wer_no_regression" not in rules_of(d) and d.passed
    (note,) = [n for n in d.notes if "anchor" in n]
    assert "reported, not gated" in note and "n=11" in note and "smoke alarm" in note


def test_missing_anchor_evidence_fails_only_when_the_policy_requires_it(champion, challenger):
    required = PromotionPolicy(n_resamples=400, require_anchor=True)
    for kwargs in ({}, {"anchor_rows": PERFECT}, {"champion_anchor_rows": PERFECT}):
        d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=required,
                   **kwargs)
        assert d.failed_rules == ["anchor_wer_no_regression"], kwargs
        assert "missing evidence is not a pass" in rules_of(d)["anchor_wer_no_regression"].detail
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST,
               anchor_rows=PERFECT)
    assert d.passed and any("champion has no anchor rows" in n for n in d.notes)
    # no champion: nothing to require
    assert decide(champion, challenger_ece=0.05, policy=required).passed


def test_champion_anchor_rows_without_a_champion_is_an_error(champion):
    with pytest.raises(ValueError, match="no champion"):
        decide(champion, challenger_ece=0.05, policy=FAST, anchor_rows=PERFECT, champion_anchor_rows=PERFECT)


def test_the_rule_is_pure_and_fails_on_missing_evidence():
    assert not rule_anchor_no_regression(None, FAST).passed
    c = compare_anchor(COLLAPSED, PERFECT, n_resamples=400)
    assert not rule_anchor_no_regression(c, FAST).passed
    assert rule_anchor_no_regression(compare_anchor(PERFECT, PERFECT, n_resamples=400), FAST).passed


def test_policy_round_trips_and_older_documents_still_read():
    p = PromotionPolicy(anchor_wer_tolerance=0.1, require_anchor=True)
    stored = json.loads(json.dumps(p.to_dict()))
    assert PromotionPolicy.from_dict(stored) == p and PromotionPolicy(**stored) == p
    older = {k: v for k, v in PromotionPolicy().to_dict().items() if not k.startswith(("anchor", "require_anchor"))}
    assert PromotionPolicy.from_dict(older) == PromotionPolicy()
    assert PromotionPolicy.from_dict(older).require_anchor is False
    with pytest.raises(ValueError, match="unknown promotion policy field.*anchor_tolerance"):
        PromotionPolicy.from_dict(older | {"anchor_tolerance": 0.1})
    with pytest.raises(ValueError, match="require_anchor"):
        PromotionPolicy(require_anchor="false")
    with pytest.raises(ValueError, match="anchor_wer_tolerance"):
        PromotionPolicy(anchor_wer_tolerance=-0.1)


# ---------------------------------------------------------------------------
# the report's anchor section
# ---------------------------------------------------------------------------


def test_report_anchor_section_renders_and_round_trips(champion):
    kw = dict(set_digest="d" * 64, commit="c" * 40, n_resamples=400)
    challenger = result_from_rows(ONE_WORD, model="challenger", **kw)
    section = AnchorSection(
        challenger, champion=result_from_rows(PERFECT, model="champion", **kw),
        peer=result_from_rows(anchor_rows(lambda ref: ref.replace("four", "for")), model="pocketsphinx", **kw),
        comparison=compare_anchor(ONE_WORD, PERFECT, n_resamples=400))
    report = build_report(champion, model_id="m", data_commit="abc", n_resamples=400, anchor=section)
    md = report.markdown()
    assert "Real speech (pocketsphinx-testdata, n=11 utterances, 96 words)" in md
    assert "11 real utterances: a smoke alarm, not a benchmark" in md
    assert "| challenger | 1.0% (1/96) |" in md and "| champion | 0.0% (0/96) |" in md and "| pocketsphinx |" in md
    html = report.html()
    assert "Real speech (pocketsphinx-testdata, n=11 utterances, 96 words)" in html and "smoke alarm" in html
    back = EvalReport.from_json(report.to_json())
    assert back.anchor == section and back.markdown() == md


def test_older_report_json_without_anchor_still_loads(champion):
    report = build_report(champion, model_id="m", data_commit="abc", n_resamples=400)
    d = json.loads(report.to_json())
    del d["anchor"]  # as written before the section existed
    back = EvalReport.from_dict(d)
    assert back.anchor is None and "Real speech" not in back.markdown()


def test_report_refuses_anchor_results_from_different_sets():
    a = result_from_rows(PERFECT, model="a", set_digest="a" * 64, commit="c", n_resamples=50)
    b = result_from_rows(PERFECT, model="b", set_digest="b" * 64, commit="c", n_resamples=50)
    with pytest.raises(ValueError, match="different sets"):
        AnchorSection(a, champion=b)


def test_report_says_why_the_peer_was_skipped(champion):
    a = result_from_rows(PERFECT, model="challenger", set_digest="a" * 64, commit="c", n_resamples=50)
    report = build_report(champion, model_id="m", data_commit="abc", n_resamples=50,
                          anchor=AnchorSection(a, peer_reason="pocketsphinx is not importable: ImportError"))
    assert "pocketsphinx peer skipped: pocketsphinx is not importable" in report.markdown()
