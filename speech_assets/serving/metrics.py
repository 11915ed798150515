"""Read the service's Prometheus metrics into per-model-version numbers over a window between two scrapes.

The service exports (see bentos/asr/service.py):

    asr_requests_total{model_version, outcome, traffic}   counter, outcome = ok | client_error | server_error
    asr_request_duration_seconds{model_version, traffic}  histogram
    asr_confidence{model_version, traffic}                histogram of calibrated utterance confidence

`traffic` is "live" for user requests and "pinned" for requests that chose their side (the controller's own
probes); `parse` keeps one class, live by default, so the canary is judged on what users experienced.

Counters only grow, so a window is the difference of two scrapes; a counter that went down means the server
restarted, and the later scrape alone is the window.  p95 comes from the histogram buckets (linear within
the bucket, as Prometheus' histogram_quantile does).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from prometheus_client.parser import text_string_to_metric_families

from speech_assets.serving.canary import VersionMetrics

REQUESTS = "asr_requests"
LATENCY = "asr_request_duration_seconds"
CONFIDENCE = "asr_confidence"


@dataclass
class VersionCounters:
    requests: float = 0.0
    errors: float = 0.0  # server errors: what the model side got wrong; 4xx are the caller's
    client_errors: float = 0.0
    latency_buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    confidence_sum: float = 0.0
    confidence_count: float = 0.0
    confidence_buckets: dict[float, float] = field(default_factory=dict)


def parse(text: str, traffic: str | None = "live") -> dict[str, VersionCounters]:
    """Per-version counters of one traffic class (None: all of them)."""
    out: dict[str, VersionCounters] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            version = s.labels.get("model_version")
            if version is None or (traffic is not None and s.labels.get("traffic", traffic) != traffic):
                continue
            c = out.setdefault(version, VersionCounters())
            if s.name == f"{REQUESTS}_total":
                c.requests += s.value
                if s.labels.get("outcome") == "server_error":
                    c.errors += s.value
                elif s.labels.get("outcome") == "client_error":
                    c.client_errors += s.value
            elif s.name == f"{LATENCY}_bucket":
                le = float(s.labels["le"])
                c.latency_buckets[le] = c.latency_buckets.get(le, 0.0) + s.value
            elif s.name == f"{CONFIDENCE}_bucket":
                le = float(s.labels["le"])
                c.confidence_buckets[le] = c.confidence_buckets.get(le, 0.0) + s.value
            elif s.name == f"{CONFIDENCE}_sum":
                c.confidence_sum += s.value
            elif s.name == f"{CONFIDENCE}_count":
                c.confidence_count += s.value
    return out


def quantile(buckets: dict[float, float], q: float) -> float:
    """The q-quantile from cumulative histogram buckets {le: count}; nan when empty."""
    if not buckets:
        return math.nan
    edges = sorted(buckets)
    total = buckets[edges[-1]]
    if total <= 0:
        return math.nan
    rank = q * total
    prev_edge, prev_count = 0.0, 0.0
    for le in edges:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return prev_edge  # beyond the last finite bucket: its edge is all we know
            if count == prev_count:
                return le
            return prev_edge + (le - prev_edge) * (rank - prev_count) / (count - prev_count)
        prev_edge, prev_count = le, count
    return edges[-1]


def _delta(cur: VersionCounters, prev: VersionCounters | None) -> VersionCounters:
    if prev is None or cur.requests < prev.requests:  # first scrape, or the server restarted
        return cur
    return VersionCounters(
        requests=cur.requests - prev.requests,
        errors=cur.errors - prev.errors,
        client_errors=cur.client_errors - prev.client_errors,
        latency_buckets={k: v - prev.latency_buckets.get(k, 0.0) for k, v in cur.latency_buckets.items()},
        confidence_sum=cur.confidence_sum - prev.confidence_sum,
        confidence_count=cur.confidence_count - prev.confidence_count,
        confidence_buckets={k: v - prev.confidence_buckets.get(k, 0.0) for k, v in cur.confidence_buckets.items()},
    )


def counters_to_json(counters: Mapping[str, VersionCounters]) -> dict:
    """A scrape as JSON: a sensor cursor keeps it to close the next window (the canary's and the SLO alert's)."""
    return {v: {**asdict(c), "latency_buckets": {repr(k): n for k, n in c.latency_buckets.items()},
                "confidence_buckets": {repr(k): n for k, n in c.confidence_buckets.items()}}
            for v, c in counters.items()}


def counters_from_json(data: Mapping[str, Any] | None) -> dict[str, VersionCounters]:
    out = {}
    for v, c in (data or {}).items():
        c = dict(c)
        c["latency_buckets"] = {float(k): n for k, n in c.get("latency_buckets", {}).items()}
        c["confidence_buckets"] = {float(k): n for k, n in c.get("confidence_buckets", {}).items()}
        out[v] = VersionCounters(**c)
    return out


def window(cur: dict[str, VersionCounters], prev: dict[str, VersionCounters] | None = None) -> dict[str, VersionMetrics]:
    """Per-version metrics for the requests served between ``prev`` and ``cur``."""
    out = {}
    for version, c in cur.items():
        d = _delta(c, (prev or {}).get(version))
        out[version] = VersionMetrics(
            requests=int(round(d.requests)),
            errors=int(round(d.errors)),
            p95_latency_s=quantile(d.latency_buckets, 0.95),
            mean_confidence=d.confidence_sum / d.confidence_count if d.confidence_count > 0 else math.nan,
        )
    return out


def confidence_spread(cur: Mapping[str, VersionCounters], prev: Mapping[str, VersionCounters] | None,
                      version: str) -> tuple[int, float, float]:
    """(requests, mean, sd) of `version`'s per-request confidence between two scrapes; the sd from the histogram
    (each bucket at its midpoint), the mean from the exact sum."""
    c = cur.get(version)
    if c is None:
        return 0, math.nan, math.nan
    d = _delta(c, (prev or {}).get(version))
    n = d.confidence_count
    if n <= 0:
        return 0, math.nan, math.nan
    mean = d.confidence_sum / n
    second, below, lo = 0.0, 0.0, 0.0
    for le in sorted(k for k in d.confidence_buckets if math.isfinite(k)):
        count = d.confidence_buckets[le] - below
        second += count * ((lo + le) / 2) ** 2
        below, lo = d.confidence_buckets[le], le
    var = max(second / n - mean * mean, 0.0)
    return int(round(n)), mean, math.sqrt(var)
