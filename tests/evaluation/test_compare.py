"""Before/after per slice: a challenger fixed on one accent shows "better" there and "no clear change" elsewhere."""

from __future__ import annotations

import random

from speech_assets.evaluation.compare import before_after, before_after_markdown


def _rows(fixed: bool) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for spk in range(12):
        accent = "caribbean" if spk < 6 else "us"
        for u in range(10):
            ref = "turn on the kitchen lights please"
            wrong = accent == "caribbean" and not fixed and u % 2 == 0
            hyp = "turn of the kitten lights please" if wrong else ref
            rows.append({"utterance_id": f"{spk}-{u}", "speaker": f"s{spk}", "reference": ref, "hypothesis": hyp,
                         "accent": accent, "channel": "telephone" if rng.random() < 0.5 else "clean"})
    return rows


def test_the_fixed_slice_is_better_and_the_others_unchanged():
    table = {r.label: r for r in before_after(_rows(fixed=True), _rows(fixed=False), columns=("accent",))}
    assert table["accent=caribbean"].verdict == "better" and table["accent=caribbean"].challenger_wer == 0.0
    assert table["accent=caribbean"].champion_wer > 0.1 and table["accent=caribbean"].delta < 0
    assert table["accent=us"].verdict == "no clear change" and table["accent=us"].delta == 0.0
    assert table["overall"].n_utterances == 120 and table["overall"].n_speakers == 12
    md = before_after_markdown(list(table.values()), "1.0.0", "1.1.0")
    assert "| accent=caribbean | 60 | 6 |" in md and "1.1.0 WER" in md and "better" in md


def test_a_slice_below_the_minimum_is_too_few_to_judge_and_shows_no_interval_from_two_speakers():
    # the demo's case: a slice of 2 utterances from 2 speakers, every one wrong before and right after
    champ, chall = _rows(fixed=False), _rows(fixed=True)
    for rows, hyp in ((champ, "turn of the lights"), (chall, None)):
        for spk in ("r1", "r2"):
            rows.append({"utterance_id": f"{spk}-0", "speaker": spk, "reference": "turn on the lights",
                         "hypothesis": hyp or "turn on the lights", "accent": "reverb-room", "channel": "reverb"})
    table = {r.label: r for r in before_after(chall, champ, columns=("accent",), min_utterances=30, min_speakers=3)}
    small = table["accent=reverb-room"]
    assert small.delta < 0  # a real difference in the point estimate ...
    assert small.verdict == "too few to judge (2 utterances < 30; 2 speakers < 3)"  # ... but never "better"
    assert table["accent=caribbean"].verdict == "better"  # 60 utterances, 6 speakers: judged
    md = before_after_markdown(list(table.values()))
    line = next(x for x in md.splitlines() if x.startswith("| accent=reverb-room |"))
    assert "(no interval: 2 speakers)" in line and "[" not in line and "better" not in line
    assert "too few to judge" in line
