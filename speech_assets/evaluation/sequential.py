"""A pre-registered group-sequential test for A/B mode: look K times, stop early only past a corrected boundary.

    design = SequentialDesign.plan(looks=4, alpha=0.05, power=0.8, min_effect=0.02, sd=0.3)
    look = design.analyse(k, challenger=ArmStats(n, mean, sd), champion=ArmStats(...))
    look.action  # "continue" | "promote" | "rollback";  look.interval  # repeated confidence interval

Which test: a two-sided two-sample z test of the difference in means (challenger - champion) of a per-request
outcome, analysed at `looks` equally spaced information fractions (k / K of the planned sample per arm), with
O'Brien-Fleming boundaries: |Z_k| >= C * sqrt(K / k), where C is chosen so that the probability of crossing at any
look under no difference is `alpha` (Jennison & Turnbull, *Group Sequential Methods*, ch. 2). Peeking is part of the
design: only the K planned looks count, each against its own boundary, so the overall false-positive rate stays at
`alpha`; looking more often than planned is not allowed (`analyse` refuses a look past K).

The stopping rule, fixed before the first request:
* at look k, Z_k >= c_k: the challenger is better: promote;
* at look k, Z_k <= -c_k: the challenger is worse: roll back;
* at the last look with no crossing: no difference shown: roll back (keep the champion: a change must earn its place).
The result is reported with the repeated confidence interval at that look, diff +- c_k * se, which keeps its
coverage whatever look the test stopped at.

The planned sample per arm is the fixed-sample size inflated by the design's factor (computed, not tabulated):
n_max = R * 2 (z_{1-a/2} + z_power)^2 sd^2 / effect^2.

C and R are found by simulation of the K-look Brownian motion with a fixed seed (deterministic), accurate to about
+-0.005 in C; tests check them against Jennison & Turnbull's tables (C = 1.977, 2.004, 2.024, 2.040 for K = 2..5 at
alpha 0.05). No Dagster import.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

_Z = NormalDist()
_PATHS = 400_000


@lru_cache(maxsize=64)
def _increments(looks: int) -> np.ndarray:
    rng = np.random.default_rng(20261203)
    return rng.standard_normal((_PATHS, looks))


def obrien_fleming_constant(looks: int, alpha: float = 0.05) -> float:
    """C such that P(any |Z_k| >= C sqrt(K/k), k = 1..K) = alpha under no difference."""
    if looks < 1:
        raise ValueError("looks must be >= 1")
    if looks == 1:
        return _Z.inv_cdf(1 - alpha / 2)
    z = np.cumsum(_increments(looks), axis=1) / np.sqrt(np.arange(1, looks + 1))
    scale = np.sqrt(looks / np.arange(1, looks + 1))
    stat = np.max(np.abs(z) / scale, axis=1)  # crossing at C iff max_k |Z_k| / sqrt(K/k) >= C
    return float(np.quantile(stat, 1 - alpha))


def _power_of(looks: int, c: float, drift: float) -> float:
    """P(cross the upper boundary at some look) when the final Z has mean `drift`."""
    k = np.arange(1, looks + 1)
    # increments of mean drift / sqrt(K): Z_k then has mean drift * sqrt(k / K), and Z_K mean `drift`
    z = np.cumsum(_increments(looks) + drift / np.sqrt(looks), axis=1) / np.sqrt(k)
    return float(np.mean(np.any(z >= c * np.sqrt(looks / k), axis=1)))


@lru_cache(maxsize=64)
def inflation_factor(looks: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """R: the K-look design's maximum sample over the fixed-sample size for the same power."""
    if looks == 1:
        return 1.0
    c = obrien_fleming_constant(looks, alpha)
    fixed = _Z.inv_cdf(1 - alpha / 2) + _Z.inv_cdf(power)
    lo, hi = fixed, fixed * 1.3
    for _ in range(40):  # the drift (mean of the final Z) that gives `power`
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _power_of(looks, c, mid) < power else (lo, mid)
    return ((lo + hi) / 2 / fixed) ** 2


@dataclass(frozen=True)
class ArmStats:
    n: int
    mean: float
    sd: float


@dataclass(frozen=True)
class Look:
    k: int
    looks: int
    z: float | None
    boundary: float
    diff: float | None
    interval: tuple[float, float] | None
    action: str  # "continue" | "promote" | "rollback"
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SequentialDesign:
    looks: int
    alpha: float
    power: float
    min_effect: float
    sd: float
    constant: float
    n_per_arm: int  # planned at the last look

    @classmethod
    def plan(cls, *, looks: int, alpha: float, power: float, min_effect: float, sd: float) -> "SequentialDesign":
        if not min_effect > 0 or not sd > 0:
            raise ValueError("min_effect and sd must be > 0")
        fixed = 2 * ((_Z.inv_cdf(1 - alpha / 2) + _Z.inv_cdf(power)) * sd / min_effect) ** 2
        n = math.ceil(fixed * inflation_factor(looks, alpha, power))
        return cls(looks, alpha, power, min_effect, sd, obrien_fleming_constant(looks, alpha), n)

    def look_size(self, k: int) -> int:
        """Requests per arm at which look k is taken."""
        return math.ceil(self.n_per_arm * k / self.looks)

    def boundary(self, k: int) -> float:
        return self.constant * math.sqrt(self.looks / k)

    def analyse(self, k: int, challenger: ArmStats, champion: ArmStats) -> Look:
        if not 1 <= k <= self.looks:
            raise ValueError(f"look {k} is not one of the {self.looks} planned looks: no peeking outside the design")
        c = self.boundary(k)
        se = math.sqrt(challenger.sd ** 2 / max(challenger.n, 1) + champion.sd ** 2 / max(champion.n, 1))
        diff = challenger.mean - champion.mean
        z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
        interval = (diff - c * se, diff + c * se)
        what = (f"look {k}/{self.looks}: challenger - champion {diff:+.4f} [{interval[0]:+.4f}, {interval[1]:+.4f}] "
                f"(repeated {1 - self.alpha:.0%} CI), z {z:+.2f} vs boundary {c:.2f} on {challenger.n} / "
                f"{champion.n} requests")
        if z >= c:
            return Look(k, self.looks, z, c, diff, interval, "promote", f"{what}: the challenger is better")
        if z <= -c:
            return Look(k, self.looks, z, c, diff, interval, "rollback", f"{what}: the challenger is worse")
        if k == self.looks:
            return Look(k, self.looks, z, c, diff, interval, "rollback",
                        f"{what}: no difference shown at the last planned look; the champion stays")
        return Look(k, self.looks, z, c, diff, interval, "continue", f"{what}: continue to look {k + 1}")

    def to_dict(self) -> dict:
        return asdict(self)
