"""Per-subgroup WER / CER tables (accent, channel, SNR band, duration band).

Every slice is reported, but only slices with enough utterances *and* enough
speakers are ``gated`` (used by the promotion rules).  A slice of eight
utterances from one speaker has an interval too wide (or, with one speaker,
collapsed to a point) to support a decision; reporting it still lets a person
see it.  Missing subgroup values are grouped under ``"<missing>"`` rather
than dropped, so the slice counts always add up to the overall count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    PairedBootstrapResult,
    align_pairs,
    bootstrap_ci,
    paired_bootstrap,
)
from .metrics import ScoredRows, score_rows

__all__ = [
    "DEFAULT_COLUMNS",
    "MIN_INTERVAL_SPEAKERS",
    "MISSING",
    "OVERALL",
    "TOO_FEW",
    "interval_shown",
    "too_few_note",
    "SliceDelta",
    "SliceResult",
    "group_rows",
    "paired_slice_table",
    "slice_table",
]

DEFAULT_COLUMNS: tuple[str, ...] = ("accent", "channel", "snr_band", "duration_band")
OVERALL = "overall"
MISSING = "<missing>"
# A speaker-level bootstrap over fewer speakers resamples one or two people: its "interval" is a point or a coin
# flip, not evidence. Such intervals are computed (kept in the JSON) but never printed as if they meant something.
MIN_INTERVAL_SPEAKERS = 3
TOO_FEW = "too few to judge"


def too_few_note(n_utterances: int, n_speakers: int, min_utterances: int, min_speakers: int) -> str:
    """Empty when a slice is large enough to judge, else "too few to judge (8 utterances < 30; 2 speakers < 3)":
    the one wording of the gate, the eval report, the demo's tables and the dashboard."""
    gated, why = _gate(n_utterances, n_speakers, min_utterances, min_speakers)
    return "" if gated else f"{TOO_FEW} ({why})"


def interval_shown(n_speakers: int) -> bool:
    """Whether a speaker-bootstrap interval over `n_speakers` speakers may be printed."""
    return n_speakers >= MIN_INTERVAL_SPEAKERS


@dataclass(frozen=True)
class SliceResult:
    column: str
    value: str
    n_utterances: int
    n_speakers: int
    wer: float
    wer_ci: tuple[float, float]
    cer: float
    cer_ci: tuple[float, float]
    gated: bool
    note: str = ""  # why a slice is not gated, empty when it is

    @property
    def label(self) -> str:
        return OVERALL if self.column == OVERALL else f"{self.column}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wer_ci"] = list(self.wer_ci)
        d["cer_ci"] = list(self.cer_ci)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SliceResult":
        return cls(
            column=d["column"],
            value=d["value"],
            n_utterances=int(d["n_utterances"]),
            n_speakers=int(d["n_speakers"]),
            wer=_f(d["wer"]),
            wer_ci=(_f(d["wer_ci"][0]), _f(d["wer_ci"][1])),
            cer=_f(d["cer"]),
            cer_ci=(_f(d["cer_ci"][0]), _f(d["cer_ci"][1])),
            gated=bool(d["gated"]),
            note=d.get("note", ""),
        )


@dataclass(frozen=True)
class SliceDelta:
    """Paired ``challenger - champion`` WER on one slice."""

    column: str
    value: str
    n_utterances: int
    n_speakers: int
    gated: bool
    result: PairedBootstrapResult
    note: str = ""

    @property
    def label(self) -> str:
        return OVERALL if self.column == OVERALL else f"{self.column}={self.value}"


def _f(x: Any) -> float:
    # JSON writes NaN as null; read it back as NaN
    return float("nan") if x is None else float(x)


def _value(row: Mapping[str, Any], column: str) -> str:
    v = row.get(column)
    return MISSING if v is None or v == "" else str(v)


def group_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> list[tuple[str, str, list[int]]]:
    """``(column, value, row indices)`` for every slice, in a stable order."""
    out = []
    for col in columns:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            groups[_value(r, col)].append(i)
        for value in sorted(groups):
            out.append((col, value, groups[value]))
    return out


def _gate(n_utt: int, n_spk: int, min_utterances: int, min_speakers: int) -> tuple[bool, str]:
    reasons = []
    if n_utt < min_utterances:
        reasons.append(f"{n_utt} utterances < {min_utterances}")
    if n_spk < min_speakers:
        reasons.append(f"{n_spk} speakers < {min_speakers}")
    return (not reasons, "; ".join(reasons))


def _slice_result(column, value, rows, min_utterances, min_speakers, n_resamples, seed, level) -> SliceResult:
    w = bootstrap_ci(rows, "wer", n_resamples=n_resamples, seed=seed, level=level)
    c = bootstrap_ci(rows, "cer", n_resamples=n_resamples, seed=seed, level=level)
    gated, note = _gate(w.n_utterances, w.n_speakers, min_utterances, min_speakers)
    if gated and w.estimate != w.estimate:  # NaN: no reference word in the slice
        gated, note = False, "no reference words"
    return SliceResult(column, value, w.n_utterances, w.n_speakers, w.estimate, w.ci, c.estimate, c.ci, gated, note)


def slice_table(
    rows: Any,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    min_utterances: int = 30,
    min_speakers: int = 3,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> list[SliceResult]:
    """The ``overall`` row first, then one row per (column, value).

    Intervals are speaker-level bootstrap intervals computed within each
    slice.  The overall row is subject to the same size rule so a tiny test
    set can never look gate-worthy.
    """
    scored = score_rows(rows)
    if not scored:
        raise ValueError("no utterances to slice")
    args = (min_utterances, min_speakers, n_resamples, seed, level)
    table = [_slice_result(OVERALL, "all", scored, *args)]
    for col, value, idx in group_rows(scored, columns):
        table.append(_slice_result(col, value, ScoredRows(scored[i] for i in idx), *args))
    return table


def paired_slice_table(
    challenger_rows: Any,
    champion_rows: Any,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    min_utterances: int = 30,
    min_speakers: int = 3,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> list[SliceDelta]:
    """Paired WER deltas, overall first, then per slice.

    Slices are formed from the challenger's subgroup columns after aligning
    the rows; the two models were run on the same utterances, so the slices
    are the same for both.
    """
    a, b = align_pairs(challenger_rows, champion_rows)
    if not a:
        raise ValueError("no utterances to compare")
    groups = [(OVERALL, "all", list(range(len(a))))] + group_rows(a, columns)
    out = []
    for col, value, idx in groups:
        res = paired_bootstrap(
            ScoredRows(a[i] for i in idx),
            ScoredRows(b[i] for i in idx),
            "wer",
            n_resamples=n_resamples,
            seed=seed,
            level=level,
        )
        gated, note = _gate(res.n_utterances, res.n_speakers, min_utterances, min_speakers)
        if gated and res.delta != res.delta:
            gated, note = False, "no reference words"
        out.append(SliceDelta(col, value, res.n_utterances, res.n_speakers, gated, res, note))
    return out
