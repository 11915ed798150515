"""Promotion gate: may a newly trained model replace the serving one?

Two situations, both decided by explicit rules that each produce a
:class:`RuleResult` (name, passed, detail, evidence):

*First model* (no champion yet) - absolute floors, no free pass:

``overall_wer_floor``             overall WER (by default its CI *upper* bound)
                                  <= ``wer_floor``; also fails when the test set
                                  is below the minimum size, because a floor
                                  certified on too little data certifies nothing
``slice_wer_floor[col=value]``    one rule per gated slice: WER <= ``slice_wer_floor``
``calibration_ece_max``           ECE <= ``max_ece``

*Challenger vs champion* (same test utterances) - no confident regression:

``overall_wer_no_regression``     fails only when the paired-bootstrap CI *lower*
                                  bound of (challenger - champion) WER exceeds
                                  ``wer_tolerance``: the challenger is then worse
                                  beyond the tolerance with ~97.5 % confidence.
                                  Noise-level differences pass.  Fails too when
                                  the shared test set is below the minimum size:
                                  on tiny data nothing is ever "confidently
                                  worse", so passing would be a free pass
``slice_wer_no_regression[...]``  the same per gated slice with ``slice_wer_tolerance``
``calibration_ece_no_regression`` challenger ECE - champion ECE <= ``ece_tolerance``
``anchor_wer_no_regression``      the real-speech anchor (:mod:`.anchor`, 11 real
                                  utterances: a smoke alarm, not a benchmark): fails
                                  when the paired-bootstrap lower bound of
                                  (challenger - champion) anchor WER exceeds
                                  ``anchor_wer_tolerance`` (default 0.05 absolute) -
                                  "clearly worse", the mark of catastrophic
                                  forgetting; on so little data a smaller regression
                                  is noise.  Applied when both models' anchor rows are
                                  given; with ``require_anchor`` missing anchor
                                  evidence fails it.  Without a champion the anchor is
                                  reported in the notes, not gated

*Drift-triggered release* (``drift`` given: the batch whose drift triggered the retrain and its drifted slices,
``intake.holdout``) - judged where the drift is, on the drift test set (that batch's rows in the test split, carried
by the rows' ``batch_id``), with either model:

``drift_wer_no_regression[<batch>]``      the drift test set as a whole, paired vs the champion: not confidently
                                          worse beyond ``slice_wer_tolerance`` (without a champion: under
                                          ``slice_wer_floor``)
``drift_wer_no_regression[<batch>:col=value]``  the same per drifted slice

                                  A drift slice (or the whole set) below the minimum size is not judged and does
                                  not pass silently: the decision *holds* ("no held-out evidence for <slice>", with
                                  the numbers it has) and the release needs a named approval
                                  (``governance.approvals``), as does a drift release with no drift test set
                                  recorded at all.

Slices below the minimum size are reported as notes, never gated: their
intervals are too wide (or, with one speaker, degenerate) to decide on.  A
rule whose statistic is undefined (NaN) fails - missing evidence is not a pass.

The rule functions are pure (evidence in, result out); :func:`decide`
computes the evidence from scored rows and applies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .anchor import DEFAULT_ANCHOR_TOLERANCE, AnchorComparison, AnchorResult, compare_anchor
from .bootstrap import PairedBootstrapResult, bootstrap_ci
from .metrics import as_rows, score_rows
from .slices import (DEFAULT_COLUMNS, OVERALL, TOO_FEW, SliceDelta, SliceResult, paired_slice_table, slice_table,
                     too_few_note)

__all__ = [
    "DriftScope",
    "PromotionDecision",
    "drift_evidence",
    "drift_markdown",
    "PromotionPolicy",
    "RuleResult",
    "decide",
    "rule_anchor_no_regression",
    "rule_ece_max",
    "rule_ece_no_regression",
    "rule_overall_floor",
    "rule_overall_no_regression",
    "rule_slice_floors",
    "rule_slice_no_regression",
]

Bound = Literal["upper", "point"]


@dataclass(frozen=True)
class PromotionPolicy:
    # first-model floors
    wer_floor: float = 0.10
    floor_bound: Bound = "upper"
    slice_wer_floor: float = 0.25
    # slices default to the point estimate: with ~30 utterances their upper
    # bounds are wide enough to fail good models on sampling noise alone, and
    # the slice floor is a coarse "is some subgroup broken" guard
    slice_floor_bound: Bound = "point"
    max_ece: float = 0.10
    # challenger vs champion tolerances (absolute WER / ECE points)
    wer_tolerance: float = 0.005
    slice_wer_tolerance: float = 0.02
    ece_tolerance: float = 0.02
    # the fitted calibration map ships only if it does not raise held-out (test) ECE by more than this over the
    # raw confidences; otherwise the identity map ships and the report says so
    calibration_tolerance: float = 0.005
    # also hold challengers to the absolute floors (off: a challenger only has
    # to not regress, as the champion already passed the floors)
    floors_for_challengers: bool = False
    # the real-speech anchor: how many absolute WER points the challenger's
    # paired lower bound may exceed the champion's by (large on purpose: with
    # 11 utterances only a collapse is distinguishable from noise), and whether
    # a challenger without anchor evidence fails (off by default so callers that
    # do not score the anchor yet keep their decisions)
    anchor_wer_tolerance: float = DEFAULT_ANCHOR_TOLERANCE
    require_anchor: bool = False
    # evidence
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    min_utterances: int = 30
    min_speakers: int = 3
    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        for name in ("floor_bound", "slice_floor_bound"):
            if getattr(self, name) not in ("upper", "point"):
                raise ValueError(f"{name} must be 'upper' or 'point'")
        tol = self.anchor_wer_tolerance
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"anchor_wer_tolerance must be a finite number >= 0, got {tol!r}")
        if not isinstance(self.require_anchor, bool):
            # a stored "false" string would be truthy and silently turn the requirement on
            raise ValueError(f"require_anchor must be true or false, got {self.require_anchor!r}")
        # a policy read back from JSON carries columns as a list; keep it a tuple so it round-trips equal
        object.__setattr__(self, "columns", tuple(self.columns))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["columns"] = list(self.columns)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PromotionPolicy":
        """The policy `to_dict` wrote. A key missing (a document older than a field) takes the default; an unknown
        key raises ValueError, because a gate field silently dropped would weaken the gate unnoticed."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown promotion policy field(s): {', '.join(unknown)}")
        return cls(**dict(d))


@dataclass(frozen=True)
class RuleResult:
    name: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftScope:
    """What triggered a drift release: the drifted batch and its drifted slices (``(column, value)``); ``recorded``
    False when no drift test set was stored for the batch (nothing was held out)."""

    batch_id: str
    slices: tuple[tuple[str, str], ...] = ()
    recorded: bool = True
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "slices": [list(s) for s in self.slices], "recorded": self.recorded,
                "note": self.note}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "DriftScope | None":
        if not d:
            return None
        return cls(str(d["batch_id"]), tuple((str(c), str(v)) for c, v in d.get("slices", ())),
                   bool(d.get("recorded", True)), str(d.get("note", "")))


@dataclass(frozen=True)
class PromotionDecision:
    passed: bool
    rules: list[RuleResult]
    mode: str  # "first_model" or "challenger_vs_champion"
    notes: list[str] = field(default_factory=list)
    # evidence the gate could not judge about what triggered the release: the release waits for a named approval
    holds: list[str] = field(default_factory=list)

    @property
    def needs_approval(self) -> bool:
        return self.passed and bool(self.holds)

    @property
    def failed_rules(self) -> list[str]:
        return [r.name for r in self.rules if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "mode": self.mode,
            "rules": [asdict(r) for r in self.rules],
            "notes": list(self.notes),
            "holds": list(self.holds),
        }

    def markdown(self) -> str:
        verdict = ("HOLD FOR APPROVAL" if self.needs_approval else "PROMOTE") if self.passed else "REJECT"
        mode = "first model: absolute floors" if self.mode == "first_model" else "challenger vs champion"
        lines = [
            f"### Promotion decision: **{verdict}**",
            "",
            f"Mode: {mode}. {sum(r.passed for r in self.rules)}/{len(self.rules)} rules passed.",
            "",
            "| Rule | Result | Why |",
            "|---|---|---|",
        ]
        for r in self.rules:
            lines.append(f"| `{r.name}` | {'PASS' if r.passed else '**FAIL**'} | {_md_cell(r.detail)} |")
        if self.failed_rules:
            lines += ["", "Failed: " + ", ".join(f"`{n}`" for n in self.failed_rules) + "."]
        if self.holds:
            lines += ["", "Held for a named approval (evidence the gate could not judge):"]
            lines += [f"- {_md_cell(h)}" for h in self.holds]
        if self.notes:
            lines += ["", "Notes:"] + [f"- {_md_cell(n)}" for n in self.notes]
        return "\n".join(lines) + "\n"


def drift_markdown(decision: PromotionDecision) -> str:
    """The drift test set's part of a decision: each drifted slice before -> after, or why it was not judged."""
    rules = [r for r in decision.rules if r.name.startswith("drift_wer_no_regression[")]
    if not rules and not decision.holds:
        return ""
    lines = ["| drift test set | result | before -> after (paired, 95 % CI) |", "|---|---|---|"]
    for r in rules:
        lines.append(f"| `{r.name.split('[', 1)[1].rstrip(']')}` | {'PASS' if r.passed else '**FAIL**'} | "
                     f"{_md_cell(r.detail)} |")
    for h in decision.holds:
        lines.append(f"| | **HOLD** | {_md_cell(h)} |")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _nan(x: float) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


# ---------------------------------------------------------------------------
# first-model rules
# ---------------------------------------------------------------------------


def _floor_rule(name: str, s: SliceResult, floor: float, bound: Bound, require_size: bool) -> RuleResult:
    value = s.wer_ci[1] if bound == "upper" else s.wer
    what = "CI upper bound" if bound == "upper" else "WER"
    evidence = {
        "wer": s.wer, "wer_ci": list(s.wer_ci), "bound": bound, "floor": floor,
        "n_utterances": s.n_utterances, "n_speakers": s.n_speakers,
    }
    stat = f"WER {s.wer:.4f} [{s.wer_ci[0]:.4f}, {s.wer_ci[1]:.4f}] on {s.n_utterances} utt / {s.n_speakers} spk"
    if require_size and not s.gated:
        return RuleResult(name, False, f"{stat}: test set too small to certify ({s.note})", evidence)
    if _nan(value):
        return RuleResult(name, False, f"{stat}: WER undefined", evidence)
    ok = value <= floor
    return RuleResult(name, ok, f"{stat}; {what} {value:.4f} {'<=' if ok else '>'} floor {floor:.4f}", evidence)


def rule_overall_floor(overall: SliceResult, policy: PromotionPolicy) -> RuleResult:
    """Overall WER (point or CI upper bound, per policy) under the floor."""
    return _floor_rule("overall_wer_floor", overall, policy.wer_floor, policy.floor_bound, require_size=True)


def rule_slice_floors(slices: Sequence[SliceResult], policy: PromotionPolicy) -> list[RuleResult]:
    """One floor rule per gated, non-overall slice."""
    return [
        _floor_rule(f"slice_wer_floor[{s.label}]", s, policy.slice_wer_floor, policy.slice_floor_bound, False)
        for s in slices
        if s.gated and s.column != OVERALL
    ]


def rule_ece_max(ece: float, policy: PromotionPolicy) -> RuleResult:
    evidence = {"ece": ece, "max_ece": policy.max_ece}
    if _nan(ece):
        return RuleResult("calibration_ece_max", False, "ECE undefined", evidence)
    ok = ece <= policy.max_ece
    return RuleResult(
        "calibration_ece_max", ok, f"ECE {ece:.4f} {'<=' if ok else '>'} max {policy.max_ece:.4f}", evidence
    )


# ---------------------------------------------------------------------------
# challenger-vs-champion rules
# ---------------------------------------------------------------------------


def _regression_rule(
    name: str, d: PairedBootstrapResult, tolerance: float, too_small: str | None = None
) -> RuleResult:
    evidence = d.to_dict() | {"tolerance": tolerance}
    stat = (
        f"WER {d.challenger:.4f} vs champion {d.champion:.4f}, delta {d.delta:+.4f} "
        f"[{d.low:+.4f}, {d.high:+.4f}] on {d.n_utterances} utt / {d.n_speakers} spk"
    )
    if too_small:
        # a tiny test set gives a CI so wide that nothing is "confidently
        # worse"; passing on that basis would be a free pass
        return RuleResult(name, False, f"{stat}: test set too small to compare ({too_small})", evidence)
    if _nan(d.low):
        return RuleResult(name, False, f"{stat}: delta undefined", evidence)
    if d.low > tolerance:
        return RuleResult(
            name, False, f"{stat}; CI lower bound {d.low:+.4f} > tolerance {tolerance:.4f}: confidently worse", evidence
        )
    return RuleResult(
        name, True, f"{stat}; CI lower bound {d.low:+.4f} <= tolerance {tolerance:.4f}: not confidently worse", evidence
    )


def rule_overall_no_regression(overall: SliceDelta, policy: PromotionPolicy) -> RuleResult:
    """Overall paired delta; fails when the shared test set is below the minimum size."""
    return _regression_rule(
        "overall_wer_no_regression", overall.result, policy.wer_tolerance, None if overall.gated else overall.note
    )


def rule_slice_no_regression(deltas: Sequence[SliceDelta], policy: PromotionPolicy) -> list[RuleResult]:
    """One rule per gated, non-overall slice."""
    return [
        _regression_rule(f"slice_wer_no_regression[{d.label}]", d.result, policy.slice_wer_tolerance)
        for d in deltas
        if d.gated and d.column != OVERALL
    ]


def rule_ece_no_regression(challenger_ece: float, champion_ece: float, policy: PromotionPolicy) -> RuleResult:
    name = "calibration_ece_no_regression"
    evidence = {"challenger_ece": challenger_ece, "champion_ece": champion_ece, "tolerance": policy.ece_tolerance}
    if _nan(challenger_ece) or _nan(champion_ece):
        return RuleResult(name, False, "ECE undefined", evidence)
    diff = challenger_ece - champion_ece
    ok = diff <= policy.ece_tolerance
    return RuleResult(
        name,
        ok,
        f"ECE {challenger_ece:.4f} vs champion {champion_ece:.4f}, change {diff:+.4f} "
        f"{'<=' if ok else '>'} tolerance {policy.ece_tolerance:.4f}",
        evidence,
    )


def rule_anchor_no_regression(comparison: AnchorComparison | None, policy: PromotionPolicy) -> RuleResult:
    """The real-speech anchor: fails when the challenger is clearly worse than the champion on it (the paired
    lower bound of the WER difference above ``policy.anchor_wer_tolerance``), when the difference is undefined,
    and when ``comparison`` is None (no anchor evidence: missing evidence is not a pass)."""
    name = "anchor_wer_no_regression"
    tolerance = policy.anchor_wer_tolerance
    if comparison is None:
        return RuleResult(name, False, "no real-speech anchor comparison (the challenger's or the champion's anchor "
                          "rows are missing) and the policy requires one (require_anchor): missing evidence is not "
                          "a pass", {"tolerance": tolerance})
    # the policy's tolerance decides, whatever tolerance the comparison was built with
    judged = AnchorComparison(comparison.result, tolerance, comparison.n_words)
    evidence = comparison.result.to_dict() | {"tolerance": tolerance, "n_words": comparison.n_words}
    if _nan(judged.result.low):
        return RuleResult(name, False, judged.detail(), evidence)
    return RuleResult(name, not judged.clearly_worse, judged.detail(), evidence)


def _anchor_rows(x: Any) -> Any:
    return list(x.rows) if isinstance(x, AnchorResult) else x


def _anchor_note(anchor_rows: Any, p: PromotionPolicy) -> str:
    rows = [dict(r) | {"speaker": r.get("speaker", r.get("utterance_id"))} for r in _anchor_rows(anchor_rows)]
    ci = bootstrap_ci(rows, "wer", n_resamples=p.n_resamples, seed=p.seed, level=p.level)
    return (f"real-speech anchor: WER {ci.estimate:.4f} [{ci.low:.4f}, {ci.high:.4f}] on n={ci.n_utterances} "
            "utterances (a smoke alarm, not a benchmark): reported, not gated (no champion to compare with)")


# ---------------------------------------------------------------------------
# decision
# ---------------------------------------------------------------------------


def _ungated_notes(items: Sequence[SliceResult | SliceDelta]) -> list[str]:
    return [
        f"{s.label}: {TOO_FEW}, reported, not gated ({s.note})" for s in items if not s.gated and s.column != OVERALL
    ]


def drift_evidence(challenger_rows: Any, champion_rows: Any, scope: DriftScope, p: PromotionPolicy
                   ) -> tuple[list[RuleResult], list[str]]:
    """(rules, holds) on the drift test set of ``scope.batch_id``: the whole set, then each drifted slice."""
    if not scope.recorded:
        return [], [f"no held-out evidence for {scope.batch_id}: no drift test set was recorded for the batch "
                    f"({scope.note or 'nothing held out'})"]
    chal = [r for r in as_rows(challenger_rows) if r.get("batch_id") == scope.batch_id]
    champ_by_id = ({r["utterance_id"]: r for r in as_rows(champion_rows)} if champion_rows is not None else None)
    rules: list[RuleResult] = []
    holds: list[str] = []
    parts = [(None, None)] + list(scope.slices)
    for col, value in parts:
        label = scope.batch_id if col is None else f"{scope.batch_id}:{col}={value}"
        what = "the drift test set" if col is None else f"{col}={value}"
        rows = chal if col is None else [r for r in chal if str(r.get(col)) == value]
        n_spk = len({r.get("speaker") for r in rows})
        if len(rows) < p.min_utterances or n_spk < p.min_speakers:
            have = ""
            if rows:
                ci = bootstrap_ci(rows, "wer", n_resamples=p.n_resamples, seed=p.seed, level=p.level)
                have = f"; the numbers it has: challenger WER {ci.estimate:.4f}"
                if champ_by_id is not None:
                    mine = [champ_by_id[r["utterance_id"]] for r in rows if r["utterance_id"] in champ_by_id]
                    if mine:
                        have += f" vs champion {bootstrap_ci(mine, 'wer', n_resamples=p.n_resamples, seed=p.seed).estimate:.4f}"
                have += f" on {len(rows)} utterances ({TOO_FEW}, no interval)"
            holds.append(f"no held-out evidence for {what} (drift in {scope.batch_id}): "
                         f"{too_few_note(len(rows), n_spk, p.min_utterances, p.min_speakers)} in its drift test "
                         f"set{have}")
            continue
        rule_name = f"drift_wer_no_regression[{label}]"
        if champ_by_id is None:
            s = slice_table(rows, (), p.min_utterances, p.min_speakers, n_resamples=p.n_resamples, seed=p.seed,
                            level=p.level)[0]
            r = _floor_rule(rule_name, s, p.slice_wer_floor, p.slice_floor_bound, require_size=False)
            rules.append(RuleResult(r.name, r.passed, f"{what}, drift test set: {r.detail}", r.evidence))
            continue
        pairs = [r for r in rows if r["utterance_id"] in champ_by_id]
        d = paired_slice_table(pairs, [champ_by_id[r["utterance_id"]] for r in pairs], (), p.min_utterances,
                               p.min_speakers, n_resamples=p.n_resamples, seed=p.seed, level=p.level)[0]
        r = _regression_rule(rule_name, d.result, p.slice_wer_tolerance)
        rules.append(RuleResult(r.name, r.passed, f"{what}, drift test set (before -> after): {r.detail}",
                                r.evidence | {"batch_id": scope.batch_id, "column": col, "value": value}))
    return rules, holds


def decide(
    challenger_rows: Any,
    *,
    challenger_ece: float,
    champion_rows: Any = None,
    champion_ece: float | None = None,
    policy: PromotionPolicy | None = None,
    anchor_rows: Any = None,
    champion_anchor_rows: Any = None,
    drift: DriftScope | None = None,
) -> PromotionDecision:
    """Apply the promotion rules.

    ``challenger_rows`` / ``champion_rows``: per-utterance rows (see
    :mod:`.metrics`) of each model on the *same* test set.  The ECEs are
    those of the confidences as served (after calibration), on that set.
    Without ``champion_rows`` the first-model floors apply.

    ``anchor_rows`` / ``champion_anchor_rows``: each model's rows on the
    real-speech anchor set (an :class:`.anchor.AnchorResult` or its rows).
    With a champion and both given, ``anchor_wer_no_regression`` is applied;
    with a champion and either missing, that rule fails when the policy's
    ``require_anchor`` is set and is left out (with a note when the
    challenger's rows were given) otherwise.  Without a champion the
    challenger's anchor WER is a note, not a rule.  Calls that pass neither
    decide exactly as before.

    ``drift``: the release was triggered by drift in ``drift.batch_id``; the
    rows' ``batch_id`` picks its drift test set (:func:`drift_evidence`).
    Where that evidence is too small the decision holds for approval.
    """
    policy = policy or PromotionPolicy()
    p = policy
    drift_rules, holds = (drift_evidence(challenger_rows, champion_rows, drift, p) if drift is not None
                          else ([], []))
    chal = score_rows(challenger_rows)
    rules: list[RuleResult] = []
    notes: list[str] = []

    def floors() -> None:
        table = slice_table(
            chal, p.columns, p.min_utterances, p.min_speakers, n_resamples=p.n_resamples, seed=p.seed, level=p.level
        )
        rules.append(rule_overall_floor(table[0], p))
        rules.extend(rule_slice_floors(table, p))
        rules.append(rule_ece_max(challenger_ece, p))
        notes.extend(_ungated_notes(table))

    if champion_rows is None:
        if champion_anchor_rows is not None:
            raise ValueError("champion_anchor_rows without champion_rows: there is no champion to compare with")
        floors()
        if anchor_rows is not None:
            notes.append(_anchor_note(anchor_rows, p))
        rules.extend(drift_rules)
        return PromotionDecision(all(r.passed for r in rules), rules, "first_model", notes, holds)

    if champion_ece is None:
        raise ValueError("champion_ece is required when comparing with a champion")
    deltas = paired_slice_table(
        chal,
        champion_rows,
        p.columns,
        p.min_utterances,
        p.min_speakers,
        n_resamples=p.n_resamples,
        seed=p.seed,
        level=p.level,
    )
    rules.append(rule_overall_no_regression(deltas[0], p))
    rules.extend(rule_slice_no_regression(deltas, p))
    rules.append(rule_ece_no_regression(challenger_ece, champion_ece, p))
    if anchor_rows is not None and champion_anchor_rows is not None:
        comparison = compare_anchor(_anchor_rows(anchor_rows), _anchor_rows(champion_anchor_rows),
                                    tolerance=p.anchor_wer_tolerance, n_resamples=p.n_resamples, seed=p.seed,
                                    level=p.level)
        rules.append(rule_anchor_no_regression(comparison, p))
    elif p.require_anchor:
        rules.append(rule_anchor_no_regression(None, p))
    elif anchor_rows is not None:
        notes.append("real-speech anchor: the champion has no anchor rows, so it is reported, not gated")
    if p.floors_for_challengers:
        floors()
    else:
        notes.extend(_ungated_notes(deltas))
    rules.extend(drift_rules)
    return PromotionDecision(all(r.passed for r in rules), rules, "challenger_vs_champion", notes, holds)
