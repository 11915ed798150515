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
