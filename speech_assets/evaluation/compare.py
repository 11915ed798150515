"""Champion vs challenger per slice, for a person: each model's WER with its interval, and the paired change.

    table = before_after(challenger_rows, champion_rows)        # the rows eval_report stores for both
    print(before_after_markdown(table))

A slice smaller than the gate's minimum (utterances or speakers, `min_utterances` / `min_speakers`) is "too few
to judge", never "better" or "worse"; an interval from fewer than 3 speakers is not printed (`slices.interval_shown`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .bootstrap import align_pairs
from .slices import DEFAULT_COLUMNS, interval_shown, paired_slice_table, slice_table, too_few_note


@dataclass(frozen=True)
class BeforeAfter:
    label: str
    n_utterances: int
    n_speakers: int
    champion_wer: float
    champion_ci: tuple[float, float]
    challenger_wer: float
    challenger_ci: tuple[float, float]
    delta: float  # challenger - champion: negative is better
    delta_ci: tuple[float, float]
    too_few: str = ""  # non-empty ("too few to judge (...)") when the slice is below the gate's minimum size

    @property
    def verdict(self) -> str:
        if self.too_few:
            return self.too_few
        if self.delta_ci[1] < 0:
            return "better"
        if self.delta_ci[0] > 0:
            return "worse"
        return "no clear change"


def before_after(challenger_rows: Any, champion_rows: Any, columns: Sequence[str] = DEFAULT_COLUMNS,
                 n_resamples: int = 1000, seed: int = 0, min_utterances: int = 30, min_speakers: int = 3
                 ) -> list[BeforeAfter]:
    a, b = align_pairs(challenger_rows, champion_rows)  # the same utterances, in the same order
    kw = dict(columns=columns, min_utterances=1, min_speakers=1, n_resamples=n_resamples, seed=seed)
    challenger = {s.label: s for s in slice_table(a, **kw)}
    champion = {s.label: s for s in slice_table(b, **kw)}
    out = []
    for d in paired_slice_table(a, b, **kw):
        ch, cp = challenger[d.label], champion[d.label]
        out.append(BeforeAfter(d.label, d.result.n_utterances, d.result.n_speakers, cp.wer, cp.wer_ci, ch.wer,
                               ch.wer_ci, d.result.delta, (d.result.low, d.result.high),
                               too_few_note(d.result.n_utterances, d.result.n_speakers, min_utterances, min_speakers)))
    return out


def _ci_text(ci: tuple[float, float], n_speakers: int, signed: bool = False) -> str:
    if not interval_shown(n_speakers):
        return f"(no interval: {n_speakers} speaker{'s' if n_speakers != 1 else ''})"
    f = "{:+.2%}" if signed else "{:.2%}"
    return f"[{f.format(ci[0])}, {f.format(ci[1])}]"


def before_after_markdown(table: Sequence[BeforeAfter], champion: str = "champion", challenger: str = "challenger") -> str:
    lines = [f"| slice | utterances | speakers | {champion} WER [95% CI] | {challenger} WER [95% CI] | change [95% CI] | |",
             "|---|---:|---:|---|---|---|---|"]
    for r in table:
        k = r.n_speakers
        lines.append(
            f"| {r.label} | {r.n_utterances} | {k} | {r.champion_wer:.2%} {_ci_text(r.champion_ci, k)} | "
            f"{r.challenger_wer:.2%} {_ci_text(r.challenger_ci, k)} | {r.delta:+.2%} {_ci_text(r.delta_ci, k, True)} | "
            f"{r.verdict} |"
        )
    return "\n".join(lines)
