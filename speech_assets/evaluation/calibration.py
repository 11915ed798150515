"""Calibration of utterance confidences.

A model reports, per utterance, a confidence in [0, 1] (computed from CTC
posteriors with a temperature).  It is *calibrated* when, among utterances
with confidence about ``c``, a fraction ``c`` is correct.  Here:

* correctness targets: exact match of the whole utterance (strict, the
  default), or the soft target ``1 - utterance WER`` clipped to [0, 1] (more
  informative when almost no long utterance is perfect);
* :func:`reliability_diagram` / :func:`expected_calibration_error`: equal-width
  bins, ECE = sum over bins of (bin share) * |accuracy - mean confidence|;
* :func:`fit_temperature`: searches the decoding temperature on a dev set
  through a callable that recomputes confidences for a temperature, so this
  module never sees logits;
* :func:`fit_isotonic`: a monotone map fitted by pool-adjacent-violators, kept
  as a JSON-serializable :class:`CalibrationMap` applied after the model;
* :func:`calibration_report`: ECE and reliability bins before / after.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .metrics import normalize_whitespace, score_rows, utterance_wer

__all__ = [
    "CalibrationMap",
    "CalibrationReport",
    "ReliabilityDiagram",
    "TemperatureFit",
    "binary_nll",
    "calibration_report",
    "confidences",
    "correctness",
    "expected_calibration_error",
    "fit_isotonic",
    "fit_temperature",
    "reliability_diagram",
]

# confidences are clipped this far from 0 and 1 inside the NLL so a single
# confidently wrong utterance costs a lot but not infinity
_EPS = 1e-7


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------


def correctness(rows: Any, soft: bool = False) -> np.ndarray:
    """Per-utterance correctness in [0, 1].

    ``soft=False``: 1.0 when the hypothesis equals the reference (after
    whitespace normalization; an empty reference is matched only by an empty
    hypothesis), else 0.0.  ``soft=True``: ``clip(1 - utterance WER, 0, 1)``.
    """
    scored = score_rows(rows)
    if soft:
        return np.array([min(1.0, max(0.0, 1.0 - utterance_wer(r))) for r in scored], dtype=float)
    return np.array(
        [
            float(normalize_whitespace(r.get("hypothesis")) == normalize_whitespace(r["reference"]))
            for r in scored
        ],
        dtype=float,
    )


def confidences(rows: Sequence[Mapping[str, Any]], column: str = "confidence") -> np.ndarray:
    """The confidence column as a float array (validated to lie in [0, 1])."""
    return _check_conf(np.array([r[column] for r in rows], dtype=float))


def _check_conf(conf: Any) -> np.ndarray:
    c = np.asarray(conf, dtype=float).reshape(-1)
    if c.size and (not np.all(np.isfinite(c)) or c.min() < -1e-9 or c.max() > 1 + 1e-9):
        raise ValueError("confidences must be finite and in [0, 1]")
    return np.clip(c, 0.0, 1.0)


def _check_pair(conf: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    c = _check_conf(conf)
    y = np.asarray(correct, dtype=float).reshape(-1)
    if c.shape != y.shape:
        raise ValueError(f"{c.size} confidences but {y.size} correctness values")
    if c.size == 0:
        raise ValueError("no utterances")
    if y.min() < 0 or y.max() > 1:
        raise ValueError("correctness must be in [0, 1]")
    return c, y


# ---------------------------------------------------------------------------
# ECE and reliability bins
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Equal-width confidence bins; empty bins have NaN accuracy/confidence."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    accuracy: tuple[float, ...]
    confidence: tuple[float, ...]
    ece: float

    @property
    def n(self) -> int:
        return int(sum(self.counts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "counts": list(self.counts),
            "accuracy": [_nan_to_none(v) for v in self.accuracy],
            "confidence": [_nan_to_none(v) for v in self.confidence],
            "ece": _nan_to_none(self.ece),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ReliabilityDiagram":
        return cls(
            edges=tuple(float(v) for v in d["edges"]),
            counts=tuple(int(v) for v in d["counts"]),
            accuracy=tuple(_none_to_nan(v) for v in d["accuracy"]),
            confidence=tuple(_none_to_nan(v) for v in d["confidence"]),
            ece=_none_to_nan(d["ece"]),
        )


def _nan_to_none(v: float) -> float | None:
    # strict JSON has no NaN
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _none_to_nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def reliability_diagram(conf: Any, correct: Any, n_bins: int = 10) -> ReliabilityDiagram:
    """Bin ``conf`` into ``n_bins`` equal-width bins on [0, 1].

    Bins are ``[lo, hi)`` except the last, which includes 1.0.
    """
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    c, y = _check_pair(conf, correct)
    idx = np.minimum((c * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    sum_c = np.bincount(idx, weights=c, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(counts > 0, sum_y / np.maximum(counts, 1), np.nan)
        mean_c = np.where(counts > 0, sum_c / np.maximum(counts, 1), np.nan)
    # |sum_y - sum_c| / N is the count-weighted |acc - conf|, without NaNs
    ece = float(np.abs(sum_y - sum_c).sum() / c.size)
    return ReliabilityDiagram(
        edges=tuple(float(e) for e in np.linspace(0.0, 1.0, n_bins + 1)),
        counts=tuple(int(v) for v in counts),
        accuracy=tuple(float(v) for v in acc),
        confidence=tuple(float(v) for v in mean_c),
        ece=ece,
    )


def expected_calibration_error(conf: Any, correct: Any, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width bins."""
    return reliability_diagram(conf, correct, n_bins).ece


def binary_nll(conf: Any, correct: Any) -> float:
    """Mean binary cross-entropy of confidences against (soft) correctness."""
    c, y = _check_pair(conf, correct)
    c = np.clip(c, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(c) + (1 - y) * np.log1p(-c)))


# ---------------------------------------------------------------------------
# temperature
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    objective: str
    objective_value: float
    current_temperature: float
    ece_before: float  # at current_temperature
    ece_after: float  # at the fitted temperature
    evaluations: int  # how many times confidence_at was called

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def fit_temperature(
    confidence_at: Callable[[float], Any],
    correct: Any,
    *,
    objective: Literal["nll", "ece"] = "nll",
    bounds: tuple[float, float] = (0.25, 8.0),
    n_grid: int = 25,
    n_bins: int = 10,
    current_temperature: float = 1.0,
    tol: float = 1e-3,
) -> TemperatureFit:
    """Temperature in ``bounds`` minimizing NLL (default) or ECE on dev data.

    ``confidence_at(T)`` must return the dev-set confidences the model gives
    at temperature ``T``, in the same order as ``correct``.

    Search: a log-spaced grid over ``bounds`` (robust to a bumpy objective -
    ECE is piecewise constant in T), then golden-section refinement in log T
    around the best grid point (NLL is smooth and usually unimodal there).
    The refinement is kept only if it improves on the grid, so the result is
    never worse than the best grid point.
    """
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError("bounds must satisfy 0 < low < high")
    if n_grid < 3:
        raise ValueError("n_grid must be >= 3")
    y = np.asarray(correct, dtype=float).reshape(-1)
    cache: dict[float, float] = {}

    def conf_at(t: float) -> np.ndarray:
        c, _ = _check_pair(confidence_at(float(t)), y)
        return c

    def f(log_t: float) -> float:
        if log_t not in cache:
            c = conf_at(math.exp(log_t))
            cache[log_t] = binary_nll(c, y) if objective == "nll" else expected_calibration_error(c, y, n_bins)
        return cache[log_t]

    if objective not in ("nll", "ece"):
        raise ValueError("objective must be 'nll' or 'ece'")
    grid = np.linspace(math.log(lo), math.log(hi), n_grid)
    values = [f(float(g)) for g in grid]
    best = int(np.argmin(values))
    a = float(grid[max(best - 1, 0)])
    b = float(grid[min(best + 1, n_grid - 1)])
    invphi = (math.sqrt(5) - 1) / 2
    x1, x2 = b - invphi * (b - a), a + invphi * (b - a)
    while b - a > tol:
        if f(x1) <= f(x2):
            b, x2 = x2, x1
            x1 = b - invphi * (b - a)
        else:
            a, x1 = x1, x2
            x2 = a + invphi * (b - a)
    best_log_t = min(cache, key=cache.get)  # grid or refinement, whichever is lower
    t_best = math.exp(best_log_t)
    evaluations = len(cache)
    ece_before = expected_calibration_error(conf_at(current_temperature), y, n_bins)
    ece_after = expected_calibration_error(conf_at(t_best), y, n_bins)
    return TemperatureFit(
        temperature=t_best,
        objective=objective,
        objective_value=cache[best_log_t],
        current_temperature=float(current_temperature),
        ece_before=ece_before,
        ece_after=ece_after,
        evaluations=evaluations + 2,
    )


# ---------------------------------------------------------------------------
# isotonic map
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationMap:
    """A post-hoc map from raw to calibrated confidence.

    ``kind="identity"``: no change.  ``kind="isotonic"``: piecewise-linear
    interpolation through knots ``(x, y)`` with ``x`` strictly increasing and
    ``y`` non-decreasing, constant beyond the end knots - so the map is
    monotone and a ranking by confidence is preserved.
    """

    kind: Literal["identity", "isotonic"] = "identity"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "identity":
            if self.x or self.y:
                raise ValueError("identity map takes no knots")
        elif self.kind == "isotonic":
            x = np.asarray(self.x, dtype=float)
            y = np.asarray(self.y, dtype=float)
            if x.size == 0 or x.shape != y.shape:
                raise ValueError("isotonic map needs equally many x and y knots (at least one)")
            if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic knots must have increasing x and non-decreasing y")
            if y.min() < 0 or y.max() > 1:
                raise ValueError("isotonic y knots must lie in [0, 1]")
        else:
            raise ValueError(f"unknown calibration map kind {self.kind!r}")

    def apply(self, conf: Any) -> np.ndarray:
        c = _check_conf(conf)
        if self.kind == "identity":
            return c
        return np.interp(c, np.asarray(self.x), np.asarray(self.y))

    def to_dict(self) -> dict[str, Any]:
        params = {} if self.kind == "identity" else {"x": list(self.x), "y": list(self.y)}
        return {"kind": self.kind, "parameters": params}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CalibrationMap":
        p = d.get("parameters", {})
        return cls(
            kind=d["kind"],
            x=tuple(float(v) for v in p.get("x", ())),
            y=tuple(float(v) for v in p.get("y", ())),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CalibrationMap":
        return cls.from_dict(json.loads(text))


def _pool_adjacent_violators(y: np.ndarray, w: np.ndarray) -> tuple[list[float], list[int], list[int]]:
    """Weighted least-squares non-decreasing fit of ``y`` (already sorted by x).

    Returns block values and each block's first / last index.  Each new point
    starts a block; while the last block's mean is below the previous one,
    the two are merged (weighted mean).  Every merge removes a block, so the
    loop is linear overall.
    """
    vals: list[float] = []
    wts: list[float] = []
    first: list[int] = []
    last: list[int] = []
    for i in range(len(y)):
        vals.append(float(y[i]))
        wts.append(float(w[i]))
        first.append(i)
        last.append(i)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wt = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wt
            wts[-2] = wt
            last[-2] = last[-1]
            del vals[-1], wts[-1], first[-1], last[-1]
    return vals, first, last


def fit_isotonic(conf: Any, correct: Any) -> CalibrationMap:
    """Isotonic (monotone) regression of correctness on confidence."""
    c, y = _check_pair(conf, correct)
    # equal confidences must map to one value: pool them before PAV
    xs, inverse = np.unique(c, return_inverse=True)
    w = np.bincount(inverse).astype(float)
    ys = np.bincount(inverse, weights=y) / w
    vals, first, last = _pool_adjacent_violators(ys, w)
    kx: list[float] = []
    ky: list[float] = []
    for v, i, j in zip(vals, first, last):
        # a block is flat from its smallest to its largest confidence;
        # between blocks the map interpolates linearly
        for k in (i, j) if i != j else (i,):
            kx.append(float(xs[k]))
            ky.append(min(1.0, max(0.0, v)))
    return CalibrationMap("isotonic", tuple(kx), tuple(ky))


# ---------------------------------------------------------------------------
# before / after summary
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationReport:
    """ECE and reliability bins before and after calibration on one data set."""

    method: str  # "temperature", "isotonic" or "none"
    target: str  # "exact" or "soft"
    before: ReliabilityDiagram
    after: ReliabilityDiagram
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ece_before(self) -> float:
        return self.before.ece

    @property
    def ece_after(self) -> float:
        return self.after.ece

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "parameters": self.parameters,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CalibrationReport":
        return cls(
            method=d["method"],
            target=d["target"],
            before=ReliabilityDiagram.from_dict(d["before"]),
            after=ReliabilityDiagram.from_dict(d["after"]),
            parameters=dict(d.get("parameters", {})),
        )


def calibration_report(
    conf_before: Any,
    conf_after: Any,
    correct: Any,
    *,
    method: str,
    target: Literal["exact", "soft"] = "exact",
    parameters: Mapping[str, Any] | None = None,
    n_bins: int = 10,
) -> CalibrationReport:
    """Summarize calibration before / after on the same utterances.

    Compute it on held-out data: on the data a map was fitted on, the
    "after" ECE is optimistic (isotonic regression nearly interpolates it).
    """
    return CalibrationReport(
        method=method,
        target=target,
        before=reliability_diagram(conf_before, correct, n_bins),
        after=reliability_diagram(conf_after, correct, n_bins),
        parameters=dict(parameters or {}),
    )
