"""How much evidence a comparison needs before it may decide: sample sizes, durations and achieved power.

A canary (or an A/B test) compares a challenger with the champion. Before it starts, this module answers: how many
speakers' worth of probe audio (paired: both models on the same utterances) and how many live requests are needed to
detect the release policy's minimum effect (e.g. a 2-point WER change) at its power and alpha, and, at the observed
traffic rate and the challenger's traffic share, how long collecting them takes. After it ends, `achieved_power` says
what power the sample it had gave — recorded beside the decision, so "no clear change" from 6 speakers is not read as
"no change".

The test these sizes are for is the one the gate already uses: per-speaker differences (speakers are the unit of
independence; utterances of one speaker are correlated), compared with zero by a two-sided test at `alpha`.
Sizes use the normal approximation with Guenther's small-sample correction for the t test (n + z_{1-a/2}^2 / 2),
which reproduces the exact noncentral-t answer to within one speaker for n >= 5 (tests check known values).
No Dagster import; pure functions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Sequence

__all__ = ["SamplePlan", "achieved_power", "paired_sd", "plan_comparison", "required_pairs", "two_sample_n"]

_Z = NormalDist()


def _z(p: float) -> float:
    return _Z.inv_cdf(p)


def _check(effect: float, sd: float, alpha: float, power: float) -> None:
    if not effect > 0:
        raise ValueError(f"the minimum effect must be > 0, got {effect!r}")
    if not sd >= 0 or not math.isfinite(sd):
        raise ValueError(f"the standard deviation must be finite and >= 0, got {sd!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power!r}")


def required_pairs(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.8, minimum: int = 3) -> int:
    """Paired units (speakers) needed for a two-sided test of mean difference 0 to detect `effect` with `power`.

    `sd`: the standard deviation of one unit's difference (e.g. a speaker's WER under the challenger minus under the
    champion). n = ((z_{1-a/2} + z_power) * sd / effect)^2 + z_{1-a/2}^2 / 2, rounded up, at least `minimum`
    (a bootstrap over fewer than 3 speakers is not evidence, see `slices.MIN_INTERVAL_SPEAKERS`)."""
    _check(effect, sd, alpha, power)
    za, zb = _z(1 - alpha / 2), _z(power)
    n = ((za + zb) * sd / effect) ** 2 + za * za / 2
    return max(minimum, math.ceil(n - 1e-9))


def two_sample_n(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.8, minimum: int = 3) -> int:
    """Units per arm for an unpaired comparison of two means with a common per-unit `sd` (live traffic: each request
    is answered by one model only). n = 2 ((z_{1-a/2} + z_power) sd / effect)^2 + z_{1-a/2}^2 / 4 per arm."""
    _check(effect, sd, alpha, power)
    za, zb = _z(1 - alpha / 2), _z(power)
    n = 2 * ((za + zb) * sd / effect) ** 2 + za * za / 4
    return max(minimum, math.ceil(n - 1e-9))


def achieved_power(n: int, sd: float, effect: float, *, alpha: float = 0.05, paired: bool = True) -> float:
    """The power a two-sided test at `alpha` had to detect `effect` with `n` units (paired) or `n` per arm.

    Normal approximation: P(|Z + effect / se| > z_{1-a/2}) with se = sd / sqrt(n) (paired) or sd sqrt(2 / n)."""
    if n <= 0:
        return 0.0
    if sd == 0:
        return 1.0
    _check(effect, sd, alpha, 0.5)
    se = sd / math.sqrt(n) if paired else sd * math.sqrt(2.0 / n)
    za, shift = _z(1 - alpha / 2), effect / se
    return (1 - _Z.cdf(za - shift)) + _Z.cdf(-za - shift)


def paired_sd(per_speaker_differences: Sequence[float]) -> float:
    """Sample standard deviation (n - 1) of per-speaker differences; needs at least 2 speakers."""
    xs = [float(x) for x in per_speaker_differences]
    if len(xs) < 2:
        raise ValueError(f"a standard deviation needs at least 2 speakers, got {len(xs)}")
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


@dataclass(frozen=True)
class SamplePlan:
    """What a comparison needs before it may decide, and how long that takes at the observed traffic."""

    min_effect: float
    alpha: float
    power: float
    speaker_sd: float  # sd of a speaker's WER difference, estimated from the champion's per-speaker WERs
    probe_speakers: int  # paired: both models on the same probe audio
    probe_utterances: int  # probe_speakers x utterances_per_speaker
    request_sd: float  # sd of the live per-request signal (e.g. error indicator, 1 - confidence)
    live_requests_per_arm: int
    challenger_share: float  # the share of live traffic the challenger gets
    traffic_rate_per_s: float | None  # observed live requests per second (None: unknown)
    duration_s: float | None  # time to collect live_requests_per_arm on the challenger's side (None: unknown rate)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        how_long = ("at an unknown traffic rate" if self.duration_s is None else
                    f"about {self.duration_s / 60:.1f} min at {self.traffic_rate_per_s:.2f} requests/s with "
                    f"{self.challenger_share:.0%} to the challenger")
        return (f"to detect a {self.min_effect:.1%} WER change at power {self.power:.0%}, alpha {self.alpha:g}: "
                f"{self.probe_speakers} probe speakers ({self.probe_utterances} utterances) and "
                f"{self.live_requests_per_arm} live requests per side, {how_long}")


def plan_comparison(champion_speaker_wers: Sequence[float], *, min_effect: float, alpha: float = 0.05,
                    power: float = 0.8, utterances_per_speaker: int = 5, request_sd: float = 0.5,
                    challenger_share: float = 0.1, traffic_rate_per_s: float | None = None) -> SamplePlan:
    """The sample a canary or A/B test needs, from the champion's per-speaker WERs on the probe set.

    Before the challenger exists on that audio, the spread of a speaker's WER *difference* is not observable; its
    stand-in is the spread of the champion's per-speaker WER (differences of two correlated models vary less, so this
    is conservative). `request_sd` is the per-request spread of the live signal (0.5: the largest a 0/1 indicator
    has). The duration counts only the challenger's side, the slower one at a small share."""
    if not 0 < challenger_share <= 1:
        raise ValueError(f"challenger_share must be in (0, 1], got {challenger_share!r}")
    sd = paired_sd(champion_speaker_wers)
    speakers = required_pairs(sd, min_effect, alpha=alpha, power=power)
    requests = two_sample_n(request_sd, min_effect, alpha=alpha, power=power)
    duration = None if not traffic_rate_per_s else requests / (traffic_rate_per_s * challenger_share)
    return SamplePlan(min_effect, alpha, power, sd, speakers, speakers * utterances_per_speaker, request_sd, requests,
                      challenger_share, traffic_rate_per_s, duration)
