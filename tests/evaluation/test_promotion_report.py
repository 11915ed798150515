"""Promotion rules and decisions; the evaluation report; real-time factor."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pytest

from speech_assets.evaluation.calibration import calibration_report, fit_isotonic
from speech_assets.evaluation.latency import measure_rtf
from speech_assets.evaluation.metrics import score_rows
from speech_assets.evaluation.promotion import (
    PromotionPolicy,
    decide,
    rule_ece_no_regression,
    rule_overall_floor,
)
from speech_assets.evaluation.report import BaselineSummary, EvalReport, build_report, summarize_baseline
from speech_assets.evaluation.slices import slice_table

from . import make_rows, with_error_rate

FAST = PromotionPolicy(n_resamples=400)

# three accents, two of them large; "scottish" is too small to gate
SPEAKERS = {"us": (20, 8, 0.04), "indian": (10, 8, 0.04), "uk": (10, 8, 0.04), "scottish": (2, 6, 0.04)}


@pytest.fixture(scope="module")
def champion():
    return score_rows(make_rows(speakers=SPEAKERS, seed=21))


def rule(decision, name):
    (r,) = [r for r in decision.rules if r.name == name]
    return r


# ---------------------------------------------------------------------------
# first model: absolute floors
# ---------------------------------------------------------------------------


def test_first_model_passes_floors(champion):
    d = decide(champion, challenger_ece=0.05, policy=FAST)
    assert d.passed and d.mode == "first_model"
    names = [r.name for r in d.rules]
    assert names[0] == "overall_wer_floor" and names[-1] == "calibration_ece_max"
    assert "slice_wer_floor[accent=indian]" in names
    assert "slice_wer_floor[accent=scottish]" not in names  # too small: reported, not gated
    assert any("accent=scottish: too few to judge, reported, not gated" in n for n in d.notes)
    assert rule(d, "overall_wer_floor").evidence["bound"] == "upper"


def test_first_model_fails_wer_floor_and_message_names_the_rule():
    rows = make_rows(speakers={"us": (20, 8, 0.15), "uk": (10, 8, 0.15)}, seed=22)
    d = decide(rows, challenger_ece=0.05, policy=FAST)
    assert not d.passed
    assert d.failed_rules == ["overall_wer_floor"]
    assert "> floor 0.1000" in rule(d, "overall_wer_floor").detail
    md = d.markdown()
    assert "REJECT" in md and "Failed: `overall_wer_floor`" in md


def test_first_model_floor_uses_upper_bound_unless_configured():
    # point estimate under the 10 % floor, upper bound above it: six speakers
    # with 0, 0, 2, 3, 4, 5 word errors in 30 words each (14 / 180 = 7.8 %)
    rows = []
    for spk, n_err in enumerate([0, 0, 2, 3, 4, 5]):
        for u in range(6):
            wrong = min(5, max(0, n_err - 5 * u))
            ref = "one two three four five"
            hyp = " ".join(["zzz"] * wrong + ref.split()[wrong:])
            rows.append({"speaker": f"s{spk}", "reference": ref, "hypothesis": hyp, "accent": "us"})
    overall = slice_table(rows, ("accent",), n_resamples=400)[0]
    assert overall.wer < 0.10 < overall.wer_ci[1]
    assert not rule_overall_floor(overall, FAST).passed
    assert rule_overall_floor(overall, PromotionPolicy(floor_bound="point")).passed


def test_first_model_fails_ece_and_slice_floor(champion):
    broken = with_error_rate(champion, {"us": 0.04, "indian": 0.40, "uk": 0.04, "scottish": 0.04}, seed=24)
    d = decide(broken, challenger_ece=0.30, policy=PromotionPolicy(n_resamples=400, wer_floor=0.5))
    assert set(d.failed_rules) == {"slice_wer_floor[accent=indian]", "calibration_ece_max"}
    assert "ECE 0.3000 > max 0.1000" in rule(d, "calibration_ece_max").detail


def test_first_model_too_small_test_set_is_no_free_pass():
    rows = make_rows(speakers={"us": (2, 5, 0.0)}, seed=25)
    d = decide(rows, challenger_ece=0.0, policy=FAST)
    assert not d.passed
    assert "too small to certify" in rule(d, "overall_wer_floor").detail


# ---------------------------------------------------------------------------
# challenger vs champion
# ---------------------------------------------------------------------------


def test_challenger_worse_on_one_gated_accent_fails_exactly_that_rule():
    champion = score_rows(with_error_rate(make_rows(speakers=SPEAKERS, seed=21), dict.fromkeys(SPEAKERS, 0.10), 25))
    # worse on "indian" (+10 points), better on "us" (-5 points on twice as
    # many utterances): the overall WER and every channel/SNR slice stay put
    challenger = with_error_rate(champion, {"us": 0.05, "indian": 0.20, "uk": 0.10, "scottish": 0.10}, seed=26)
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST)
    assert d.mode == "challenger_vs_champion"
    assert d.failed_rules == ["slice_wer_no_regression[accent=indian]"]
    failed = rule(d, "slice_wer_no_regression[accent=indian]")
    assert "confidently worse" in failed.detail and failed.evidence["low"] > 0.02
    md = d.markdown()
    assert "REJECT" in md and "| `slice_wer_no_regression[accent=indian]` | **FAIL** |" in md


def test_small_non_significant_differences_pass(champion):
    challenger = with_error_rate(champion, {"us": 0.045, "indian": 0.05, "uk": 0.04, "scottish": 0.06}, seed=27)
    d = decide(challenger, challenger_ece=0.06, champion_rows=champion, champion_ece=0.05, policy=FAST)
    assert d.passed, d.markdown()
    assert "not confidently worse" in rule(d, "overall_wer_no_regression").detail


def test_identical_challenger_passes_and_markdown_lists_every_rule(champion):
    d = decide(champion, challenger_ece=0.05, champion_rows=[dict(r) for r in champion], champion_ece=0.05,
               policy=FAST)
    assert d.passed
    md = d.markdown()
    assert "PROMOTE" in md
    for r in d.rules:
        assert f"| `{r.name}` | PASS |" in md
    # overall, 3 gated accents, 2 channels, 2 SNR bands, 1 duration band, ECE
    assert len(d.rules) == 1 + 3 + 2 + 2 + 1 + 1
    json.dumps(d.to_dict())  # evidence is JSON-serializable for run metadata


def test_clearly_worse_challenger_fails_overall(champion):
    challenger = with_error_rate(champion, {"us": 0.15, "indian": 0.15, "uk": 0.15, "scottish": 0.15}, seed=28)
    d = decide(challenger, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST)
    assert "overall_wer_no_regression" in d.failed_rules


def test_calibration_regression_rule():
    p = PromotionPolicy()
    assert rule_ece_no_regression(0.06, 0.05, p).passed
    r = rule_ece_no_regression(0.09, 0.05, p)
    assert not r.passed and "> tolerance 0.0200" in r.detail
    assert not rule_ece_no_regression(float("nan"), 0.05, p).passed  # missing evidence is not a pass


def test_champion_needs_its_ece(champion):
    with pytest.raises(ValueError, match="champion_ece"):
        decide(champion, challenger_ece=0.05, champion_rows=champion)


def test_challenger_on_too_small_test_set_is_no_free_pass():
    champion = make_rows(speakers={"us": (2, 5, 0.1)}, seed=40)
    d = decide(champion, challenger_ece=0.05, champion_rows=champion, champion_ece=0.05, policy=FAST)
    assert d.failed_rules == ["overall_wer_no_regression"]
    assert "too small to compare" in rule(d, "overall_wer_no_regression").detail


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(champion):
    rng = np.random.default_rng(30)
    correct = np.array([float(r["hypothesis"] == r["reference"]) for r in champion])
    raw = np.clip(0.3 + 0.7 * rng.random(len(champion)), 0, 1)
    cmap = fit_isotonic(raw, correct)
    cal = calibration_report(raw, cmap.apply(raw), correct, method="isotonic", parameters=cmap.to_dict())
    rtf = measure_rtf(lambda w: np.fft.rfft(w), [np.zeros(16000), np.zeros(8000)], repeats=2)
    baseline = summarize_baseline("pocketsphinx", with_error_rate(champion, dict.fromkeys(SPEAKERS, 0.3), seed=31),
                                  n_resamples=200)
    return build_report(champion, model_id="ctc-small@v7", data_commit="abc123", calibration=cal, rtf=rtf,
                        baseline=baseline, n_resamples=200)


def test_report_markdown_has_tables(report):
    md = report.markdown()
    assert "## Evaluation of `ctc-small@v7`" in md and "`abc123`" in md
    assert "| Metric | Value | 95% CI |" in md
    assert "| Column | Value | Utterances | Speakers | WER |" in md
    assert "| accent | scottish | 12 | 2 |" in md and "no: too few to judge (12 utterances < 30; 2 speakers < 3)" in md
    scottish = next(line for line in md.splitlines() if line.startswith("| accent | scottish |"))
    assert "— (2 speakers)" in scottish and "[" not in scottish  # no interval printed from 2 speakers
    assert "| Bin | n before |" in md and "Method: isotonic" in md
    assert "Real-time factor" in md and "Baseline WER (pocketsphinx)" in md
    assert report.n_utterances == 332 and report.n_speakers == 42


def test_report_html_embeds_png_plots(report):
    page = report.html()
    assert page.startswith("<!DOCTYPE html>")
    imgs = re.findall(r'<img alt="([a-z_]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert {name for name, _ in imgs} == {"wer_by_slice", "reliability"}
    for _, data in imgs:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<table>" in page and "src=\"http" not in page  # self-contained
    pngs = report.plots_png()
    assert set(pngs) == {"wer_by_slice", "reliability"} and all(p.startswith(b"\x89PNG") for p in pngs.values())


def test_report_json_round_trip(report):
    text = report.to_json()
    json.loads(text)  # strict JSON: empty reliability bins are null, not NaN
    assert "NaN" not in text
    again = EvalReport.from_json(text)
    assert again.to_json() == text
    assert again.model_id == report.model_id and again.wer == report.wer and again.wer_ci == report.wer_ci
    assert again.slices == report.slices
    assert again.rtf == report.rtf and again.baseline == report.baseline
    assert again.calibration.ece_after == report.calibration.ece_after


def test_report_without_optional_parts_and_skipped_baseline(champion):
    r = build_report(champion, model_id="m", data_commit="c", n_resamples=100,
                     baseline=BaselineSummary.unavailable("pocketsphinx", "pocketsphinx is not importable"))
    md = r.markdown()
    assert "skipped: pocketsphinx is not importable" in md and "### Calibration" not in md
    assert set(r.plots_png()) == {"wer_by_slice"}
    assert EvalReport.from_json(r.to_json()).to_json() == r.to_json()


# ---------------------------------------------------------------------------
# latency
# ---------------------------------------------------------------------------


def test_measure_rtf():
    calls = []

    def slow(w):
        calls.append(len(w))
        time.sleep(0.02)

    waves = [np.zeros(1600), np.zeros(1600)]  # 0.2 s of audio
    r = measure_rtf(slow, waves, sample_rate=16000, warmup=1, repeats=3)
    assert len(calls) == 1 + 3 * 2
    assert r.audio_seconds == pytest.approx(0.2)
    assert 0.15 < r.rtf < 0.6  # 0.04 s per 0.2 s pass, plus scheduling slack
    assert r.rtf == sorted(r.rtf_per_repeat)[1]
    batch = measure_rtf(lambda ws: [len(w) for w in ws], waves, batch=True, warmup=0)
    assert batch.rtf >= 0
    with pytest.raises(ValueError):
        measure_rtf(slow, [np.zeros(0)])

