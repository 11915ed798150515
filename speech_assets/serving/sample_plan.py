"""The sample a canary needs before it may promote, sized when its challenger enters.

    plan = canary_sample_plan(champion_rows, min_effect=0.02, alpha=0.05, power=0.8, max_error_rate=0.02)
    probe = select_probe_set(rows, commit, sized_probe_size(size, plan.probe_speakers_needed, test_speakers), ...)
    plan = plan.with_probe(probe_speakers=len({...}))      # what the chosen probe set can show

Two kinds of evidence, sized separately, because live requests carry no transcript to score:

* **WER, on the labelled probe set** (both models on the same audio, paired by speaker): the number of speakers
  needed to detect `min_effect` (absolute WER) at `power` and two-sided `alpha` (`evaluation.power.required_pairs`),
  from the spread of the champion's per-speaker WER on the latest evaluation's test set (the stand-in for the spread
  of a speaker's difference before the challenger has run on the probe audio: conservative). The probe set is then
  chosen with at least that many speakers when the test split has them; `probe_power` is the power the chosen set
  gives (`evaluation.power.achieved_power`), recorded beside every decision.
* **Errors, on live requests**: how many live requests the challenger must serve, all without a failure, to show
  its error rate is below the guardrail `max_error_rate` at `alpha` (the exact zero-failure binomial bound:
  (1 - max_error_rate)^n <= alpha). The canary does not promote before it has served them; a failure rolls back.

Measured for the record (tests/evaluation/test_power.py): a 0/1 live signal would need ~9,800 requests per side to
detect a 2-point change, which is why WER evidence comes from the paired probe set.

No Dagster import.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from speech_assets.evaluation.power import achieved_power, paired_sd, required_pairs


def zero_failure_requests(max_error_rate: float, alpha: float) -> int:
    """Requests that must all succeed to show an error rate below `max_error_rate` with confidence 1 - alpha."""
    if not 0 < max_error_rate < 1:
        raise ValueError(f"max_error_rate must be in (0, 1), got {max_error_rate!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return math.ceil(math.log(alpha) / math.log1p(-max_error_rate) - 1e-9)


def speaker_wers(rows: Sequence[Mapping]) -> list[float]:
    """Each speaker's corpus WER (word errors / reference words) from scored evaluation rows."""
    from speech_assets.evaluation.metrics import score_rows

    errors: dict[str, float] = defaultdict(float)
    words: dict[str, float] = defaultdict(float)
    for r in score_rows(list(rows)) if rows else []:
        errors[str(r.get("speaker"))] += sum(float(r[k]) for k in ("word_substitutions", "word_deletions",
                                                                   "word_insertions"))
        words[str(r.get("speaker"))] += float(r["ref_words"])
    return [errors[s] / words[s] for s in sorted(words) if words[s] > 0]


@dataclass(frozen=True)
class CanarySamplePlan:
    min_effect: float
    alpha: float
    power: float
    champion_speakers: int  # speakers the spread was estimated from
    speaker_sd: float | None  # sd of the champion's per-speaker WER (None: fewer than 2 speakers)
    probe_speakers_needed: int | None  # None: the spread is unknown
    live_requests_needed: int
    max_error_rate: float
    probe_speakers: int | None = None  # in the chosen probe set
    probe_power: float | None = None  # the power the chosen probe set gives to detect min_effect

    def with_probe(self, probe_speakers: int) -> "CanarySamplePlan":
        pw = (None if self.speaker_sd is None else
              round(achieved_power(probe_speakers, self.speaker_sd, self.min_effect, alpha=self.alpha), 4))
        return replace(self, probe_speakers=probe_speakers, probe_power=pw)

    @property
    def underpowered(self) -> bool:
        return self.probe_power is not None and self.probe_power < self.power

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "CanarySamplePlan":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    def summary(self) -> str:
        if self.probe_speakers_needed is None:
            wer = "WER spread unknown (no champion rows): the probe comparison is not sized"
        else:
            wer = (f"{self.probe_speakers_needed} probe speakers to detect a {self.min_effect:.1%} WER change at power "
                   f"{self.power:.0%}, alpha {self.alpha:g} (champion per-speaker WER sd {self.speaker_sd:.3f} over "
                   f"{self.champion_speakers} speakers)")
            if self.probe_speakers is not None:
                wer += (f"; the probe set has {self.probe_speakers} speakers: power {self.probe_power:.0%}"
                        + (" (underpowered)" if self.underpowered else ""))
        return (f"{wer}; {self.live_requests_needed} live requests without a failure to show an error rate below "
                f"{self.max_error_rate:.1%} at alpha {self.alpha:g}")


def canary_sample_plan(champion_rows: Sequence[Mapping] | None, *, min_effect: float, alpha: float, power: float,
                       max_error_rate: float) -> CanarySamplePlan:
    wers = speaker_wers(champion_rows or [])
    sd = paired_sd(wers) if len(wers) >= 2 else None
    needed = required_pairs(sd, min_effect, alpha=alpha, power=power) if sd is not None else None
    return CanarySamplePlan(min_effect, alpha, power, len(wers), None if sd is None else round(sd, 5), needed,
                            zero_failure_requests(max_error_rate, alpha), max_error_rate)
