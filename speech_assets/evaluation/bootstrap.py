"""Speaker-level (cluster) bootstrap intervals for corpus WER / CER.

Utterances of one speaker are not independent: a speaker the model handles
badly contributes many bad utterances at once.  Resampling utterances would
treat those as independent draws and give intervals that are far too narrow,
so the unit of resampling here is the *speaker*: each resample draws as many
speakers as there are, with replacement, and recomputes the ratio of summed
errors to summed reference units over the drawn speakers.

Vectorized: errors and units are summed per speaker once, then a
``(n_resamples, n_speakers)`` matrix of speaker indices is drawn from a seeded
``numpy.random.Generator`` and reduced with sums (in chunks, so memory stays
bounded for large test sets).  The interval is the percentile interval of the
resampled statistic; the point estimate is the plain corpus rate.

Resamples that happen to contain no reference unit (only possible when some
speakers have only empty references) are undefined and left out of the
percentiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .metrics import Metric, ScoredRows, error_arrays, rate, score_rows

__all__ = [
    "BootstrapResult",
    "PairedBootstrapResult",
    "align_pairs",
    "bootstrap_ci",
    "paired_bootstrap",
    "speaker_totals",
]

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
# upper bound on the number of int64 indices materialized per chunk (~16 MB)
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class BootstrapResult:
    """Corpus rate with its speaker-bootstrap percentile interval."""

    metric: str
    estimate: float
    low: float
    high: float
    level: float
    n_resamples: int
    n_speakers: int
    n_utterances: int

    @property
    def ci(self) -> tuple[float, float]:
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedBootstrapResult:
    """``challenger - champion`` on the same utterances, with its interval.

    Positive ``delta`` means the challenger makes more errors.
    """

    metric: str
    challenger: float
    champion: float
    delta: float
    low: float
    high: float
    level: float
    n_resamples: int
    n_speakers: int
    n_utterances: int

    @property
    def ci(self) -> tuple[float, float]:
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def speaker_totals(
    rows: Sequence[Mapping[str, Any]], metric: Metric = "wer"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(speaker ids, errors per speaker, reference units per speaker)``."""
    scored = score_rows(rows)
    speakers = []
    for r in scored:
        spk = r.get("speaker")
        if spk is None:
            # without speakers the clustering - the whole point - is impossible
            raise ValueError("every row needs a 'speaker' for the speaker-level bootstrap")
        speakers.append(str(spk))
    errors, units = error_arrays(scored, metric)
    ids, inverse = np.unique(np.asarray(speakers, dtype=object), return_inverse=True)
    n = len(ids)
    return (
        ids,
        np.bincount(inverse, weights=errors, minlength=n),
        np.bincount(inverse, weights=units, minlength=n),
    )


def _resampled_sums(rng: np.random.Generator, n_resamples: int, *per_speaker: np.ndarray) -> list[np.ndarray]:
    """Sum each per-speaker array over ``n_resamples`` speaker resamples.

    The same index draw is applied to every array, which is what makes the
    paired bootstrap paired.
    """
    n = len(per_speaker[0])
    out = [np.empty(n_resamples) for _ in per_speaker]
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for arr, dst in zip(per_speaker, out):
            dst[start:stop] = arr[idx].sum(axis=1)
    return out


def _ratio(errors: np.ndarray, units: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(units > 0, errors / np.where(units > 0, units, 1), np.nan)


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    alpha = 1.0 - level
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def _check(n_resamples: int, level: float) -> None:
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")


def bootstrap_ci(
    rows: Sequence[Mapping[str, Any]],
    metric: Metric = "wer",
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> BootstrapResult:
    """Corpus ``metric`` with a speaker-level bootstrap percentile interval.

    With a single speaker every resample is that speaker and the interval
    collapses to the point: there is no between-speaker information, which is
    why slices need a minimum number of speakers before they are gated.
    """
    _check(n_resamples, level)
    scored = score_rows(rows)
    if not scored:
        raise ValueError("no utterances to bootstrap")
    ids, errors, units = speaker_totals(scored, metric)
    rng = np.random.default_rng(seed)
    e, u = _resampled_sums(rng, n_resamples, errors, units)
    lo, hi = _percentiles(_ratio(e, u), level)
    return BootstrapResult(
        metric=metric,
        estimate=rate(errors.sum(), units.sum()),
        low=lo,
        high=hi,
        level=level,
        n_resamples=n_resamples,
        n_speakers=len(ids),
        n_utterances=len(scored),
    )


def align_pairs(
    challenger_rows: Sequence[Mapping[str, Any]], champion_rows: Sequence[Mapping[str, Any]]
) -> tuple[ScoredRows, ScoredRows]:
    """Put both models' rows (scored) in the same utterance order.

    By ``utterance_id`` when every row has one (the two id sets must be equal),
    otherwise by position.  Either way each pair must share speaker and
    reference: a paired comparison over different test data would be
    meaningless, so a mismatch is an error rather than a silent drop.
    """
    a = score_rows(challenger_rows)
    b = score_rows(champion_rows)
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same utterances: {len(a)} vs {len(b)} rows")
    if all("utterance_id" in r for r in a) and all("utterance_id" in r for r in b):
        by_id = {r["utterance_id"]: r for r in b}
        if len(by_id) != len(b) or len({r["utterance_id"] for r in a}) != len(a):
            raise ValueError("duplicate utterance_id in paired rows")
        missing = [r["utterance_id"] for r in a if r["utterance_id"] not in by_id]
        if missing:
            raise ValueError(f"{len(missing)} challenger utterance(s) absent for champion, e.g. {missing[:3]}")
        b = ScoredRows(by_id[r["utterance_id"]] for r in a)
    for i, (x, y) in enumerate(zip(a, b)):
        if str(x.get("speaker")) != str(y.get("speaker")) or (
            "reference" in x and "reference" in y and x["reference"] != y["reference"]
        ):
            raise ValueError(f"pair {i} differs in speaker or reference; not the same test utterance")
    return a, b


def paired_bootstrap(
    challenger_rows: Sequence[Mapping[str, Any]],
    champion_rows: Sequence[Mapping[str, Any]],
    metric: Metric = "wer",
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> PairedBootstrapResult:
    """Difference ``challenger - champion`` with a paired speaker bootstrap.

    Speakers are drawn once per resample and both models are scored on that
    same draw, so the between-speaker variance both models share cancels in
    the difference; the interval reflects only how differently the two models
    behave across speakers.
    """
    _check(n_resamples, level)
    a, b = align_pairs(challenger_rows, champion_rows)
    if not a:
        raise ValueError("no utterances to compare")
    ids, ea, ua = speaker_totals(a, metric)
    _, eb, ub = speaker_totals(b, metric)
    rng = np.random.default_rng(seed)
    # units are identical for both models (same references) but summing them
    # separately keeps this correct even if normalization ever differed
    sea, sua, seb, sub = _resampled_sums(rng, n_resamples, ea, ua, eb, ub)
    lo, hi = _percentiles(_ratio(sea, sua) - _ratio(seb, sub), level)
    ra, rb = rate(ea.sum(), ua.sum()), rate(eb.sum(), ub.sum())
    return PairedBootstrapResult(
        metric=metric,
        challenger=ra,
        champion=rb,
        delta=ra - rb,
        low=lo,
        high=hi,
        level=level,
        n_resamples=n_resamples,
        n_speakers=len(ids),
        n_utterances=len(a),
    )
