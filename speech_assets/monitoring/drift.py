"""How far a batch of incoming speech is from what the production model was trained on.

    reference = build_reference([stats of every batch the model trained on])      # once per model
    report = drift_report(batch_stats, reference, DriftConfig(), confidences=...)  # per batch

Both inputs are the per-batch statistics `features` stores (speech_assets.features.stats), never audio, so a
report costs the same whether the corpus holds 10 batches or 10,000.  Every signal is an effect size (PSI for
binned numeric distributions, Jensen-Shannon distance for categorical mixes and mel-band distributions, plain
rates for out-of-vocabulary words and clipping) with its threshold; where utterances are independent draws a
chi-square test of homogeneity against the reference must also reject at `alpha`, so a small batch's noise does
not fire.  A batch or a subgroup below its minimum size is reported as `insufficient`, never as drift.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

SUBGROUP_COLUMNS = ("accent", "channel")
CONFIDENCE_EDGES = np.linspace(0.0, 1.0, 11)
_EPS = 1e-4


@dataclass(frozen=True)
class DriftConfig:
    min_utterances: int = 30  # a batch smaller than this is too small to judge
    min_subgroup_utterances: int = 15
    alpha: float = 0.01  # significance of the homogeneity tests
    psi_threshold: float = 0.25  # duration, SNR, speaking rate, confidence (0.1 moderate, 0.25 large: the usual reading)
    band_js_threshold: float = 0.15  # mean JS distance over the mel bands (same-population batches: ~0.10 at 60 utterances)
    mix_js_threshold: float = 0.20  # accent, channel, sample-rate and codec mixes
    unseen_share_threshold: float = 0.10  # share of the batch from accents/channels the reference never saw
    subgroup_shift_threshold: float = 0.50  # mean |band-mean change| of a subgroup, in reference std units
    oov_threshold: float = 0.05  # share of word tokens outside the training vocabulary, beyond the expected
    clipping_threshold: float = 0.01  # rise in the mean clipped fraction
    confidence_drop_threshold: float = 0.10  # fall in the served model's mean confidence

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Signal:
    name: str
    value: float | None
    threshold: float
    status: str  # "ok" | "drift" | "insufficient"
    n: int  # utterances behind the value
    p_value: float | None = None
    detail: str = ""

    @property
    def score(self) -> float:
        """value / threshold (1.0 = at the threshold); 0 when not judged."""
        if self.status == "insufficient" or self.value is None or self.threshold <= 0:
            return 0.0
        return float(self.value) / self.threshold


@dataclass
class DriftReport:
    batch_id: str
    utterances: int
    signals: list[Signal] = field(default_factory=list)
    subgroups: list[Signal] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return any(s.status == "drift" for s in self.signals + self.subgroups)

    @property
    def score(self) -> float:
        """The largest value/threshold of any judged signal: >= 1 means something drifted."""
        return max((s.score for s in self.signals + self.subgroups), default=0.0)

    @property
    def fired(self) -> list[str]:
        return [s.name for s in self.signals + self.subgroups if s.status == "drift"]

    def to_dict(self) -> dict:
        return {"batch_id": self.batch_id, "utterances": self.utterances, "drifted": self.drifted,
                "score": self.score, "fired": self.fired, "config": self.config,
                "signals": [asdict(s) for s in self.signals], "subgroups": [asdict(s) for s in self.subgroups]}

    def markdown(self) -> str:
        def row(s: Signal) -> str:
            value = "n/a" if s.value is None else f"{s.value:.3f}"
            p = "" if s.p_value is None else f"{s.p_value:.2g}"
            mark = {"drift": "**DRIFT**", "ok": "ok", "insufficient": "too few"}[s.status]
            return f"| {s.name} | {value} | {s.threshold:g} | {p} | {s.n} | {mark} | {s.detail} |"

        head = ["| signal | value | threshold | p | n | verdict | detail |", "|---|---:|---:|---:|---:|---|---|"]
        verdict = (f"**drift** in {', '.join(self.fired)}" if self.drifted else "no drift") + f" (score {self.score:.2f})"
        out = [f"Batch `{self.batch_id}`, {self.utterances} utterances: {verdict}", "", *head, *map(row, self.signals)]
        if self.subgroups:
            out += ["", "Per subgroup:", "", *head, *map(row, self.subgroups)]
        return "\n".join(out)


# -- distances and tests ------------------------------------------------------------------------------------
def _probs(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    p = counts / total if total > 0 else np.full_like(counts, 1.0 / max(len(counts), 1))
    return (p + _EPS) / (1.0 + _EPS * len(p))


def psi(batch: Iterable[float], reference: Iterable[float]) -> float:
    """Population stability index of two histograms on the same bins (smoothed: empty bins are finite)."""
    p, q = _probs(np.asarray(list(batch))), _probs(np.asarray(list(reference)))
    return float(np.sum((p - q) * np.log(p / q)))


def js_distance(batch: Iterable[float], reference: Iterable[float]) -> float:
    """Jensen-Shannon distance (base 2: 0 = same, 1 = disjoint)."""
    p, q = np.asarray(list(batch), dtype=np.float64), np.asarray(list(reference), dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return math.sqrt(max(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0))


def chi2_homogeneity(batch: Iterable[float], reference: Iterable[float]) -> float:
    """p-value of a chi-square test that two count vectors come from one distribution (1.0 when untestable)."""
    a, b = np.asarray(list(batch), dtype=np.float64), np.asarray(list(reference), dtype=np.float64)
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    if len(a) < 2 or a.sum() == 0 or b.sum() == 0:
        return 1.0
    table = np.stack([a, b])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return _chi2_sf(stat, len(a) - 1)


def _chi2_sf(x: float, df: int) -> float:
    import torch

    return float(torch.special.gammaincc(torch.tensor(df / 2.0, dtype=torch.float64), torch.tensor(x / 2.0, dtype=torch.float64)))


def coarsen(batch: Iterable[float], reference: Iterable[float], min_expected: float = 5.0) -> tuple[list, list]:
    """Merge adjacent bins until each expects >= `min_expected` batch counts under the reference.

    Fixed fine bins keep any two batches comparable, but with a batch of a hundred utterances most of them hold
    a count or two, which inflates PSI and breaks the chi-square approximation; merging by the reference's
    expectation (not by the batch's own counts) keeps the test honest.
    """
    b, r = np.asarray(list(batch), dtype=np.float64), np.asarray(list(reference), dtype=np.float64)
    if r.sum() <= 0 or b.sum() <= 0:
        return b.tolist(), r.tolist()
    expected = r / r.sum() * b.sum()
    out_b, out_r, acc_b, acc_r, acc_e = [], [], 0.0, 0.0, 0.0
    for bi, ri, ei in zip(b, r, expected):
        acc_b, acc_r, acc_e = acc_b + bi, acc_r + ri, acc_e + ei
        if acc_e >= min_expected:
            out_b.append(acc_b)
            out_r.append(acc_r)
            acc_b = acc_r = acc_e = 0.0
    if acc_b or acc_r:  # the tail joins the last full bin
        if out_b:
            out_b[-1] += acc_b
            out_r[-1] += acc_r
        else:
            out_b, out_r = [acc_b], [acc_r]
    return out_b, out_r


# -- the reference ----------------------------------------------------------------------------------------
def _add_counts(into: dict, counts: Mapping) -> None:
    for k, v in counts.items():
        into[str(k)] = into.get(str(k), 0) + v


def build_reference(stats: Iterable[dict]) -> dict:
    """Sum per-batch statistics into one reference (histograms add; means are re-weighted)."""
    ref: dict = {"batches": 0, "utterances": 0, "frames": 0, "audio_seconds": 0.0, "hist": {}, "band_hist": None,
                 "band_sum": None, "band_sq": None, "clipped_sum": 0.0, "sample_rates": {}, "formats": {},
                 "words": {}, "subgroups": {c: {} for c in SUBGROUP_COLUMNS}}
    for s in stats:
        n, frames = s["utterances"], s.get("frames", 0)
        ref["batches"] += 1
        ref["utterances"] += n
        ref["frames"] += frames
        ref["audio_seconds"] += s.get("audio_seconds", 0.0)
        for key in ("duration", "snr_db", "speaking_rate_wps"):
            h = np.asarray(s[key]["hist"], dtype=np.float64)
            ref["hist"][key] = (np.asarray(ref["hist"][key]) + h).tolist() if key in ref["hist"] else h.tolist()
        if "band_hist" in s and frames:
            mean, var = np.asarray(s["band_mean"]), np.asarray(s["band_var"])
            parts = (np.asarray(s["band_hist"], dtype=np.float64), mean * frames, (var + mean**2) * frames)
            for key, part in zip(("band_hist", "band_sum", "band_sq"), parts):
                ref[key] = part if ref[key] is None else ref[key] + part
        ref["clipped_sum"] += s["clipping"]["mean_clipped_fraction"] * n
        _add_counts(ref["sample_rates"], s.get("sample_rates", {}))
        _add_counts(ref["formats"], s.get("formats", {}))
        _add_counts(ref["words"], s.get("words", {}))
        for col in SUBGROUP_COLUMNS:
            for value, e in s.get("subgroups", {}).get(col, {}).items():
                g = ref["subgroups"][col].setdefault(value, {"utterances": 0, "seconds": 0.0, "band_sum": None})
                g["utterances"] += e["utterances"]
                g["seconds"] += e["audio_seconds"]
                if "band_mean" in e:
                    part = np.asarray(e["band_mean"]) * e["audio_seconds"]  # seconds stand in for frames
                    g["band_sum"] = part if g["band_sum"] is None else g["band_sum"] + part
    out = {k: v for k, v in ref.items() if k not in ("band_sum", "band_sq", "clipped_sum")}
    if ref["band_sum"] is not None and ref["frames"]:
        mean = ref["band_sum"] / ref["frames"]
        out["band_mean"] = mean.tolist()
        out["band_std"] = np.sqrt(np.maximum(ref["band_sq"] / ref["frames"] - mean**2, 1e-6)).tolist()
        out["band_hist"] = ref["band_hist"].tolist()
    out["clipping_mean"] = ref["clipped_sum"] / ref["utterances"] if ref["utterances"] else 0.0
    for col in SUBGROUP_COLUMNS:
        for g in out["subgroups"][col].values():
            band_sum = g.pop("band_sum")
            if band_sum is not None and g["seconds"] > 0:
                g["band_mean"] = (band_sum / g["seconds"]).tolist()
    return out


def confidence_histogram(confidences: Iterable[float]) -> list[int]:
    c = np.clip(np.asarray(list(confidences), dtype=np.float64), 0.0, 1.0 - 1e-9)
    return np.histogram(c, bins=CONFIDENCE_EDGES)[0].astype(int).tolist()


# -- the report ------------------------------------------------------------------------------------------
def _judged(name, value, threshold, n, minimum, p=None, alpha=None, detail="") -> Signal:
    if n < minimum:
        return Signal(name, value, threshold, "insufficient", n, p, f"{n} < {minimum} utterances" + (f"; {detail}" if detail else ""))
    fired = value is not None and value >= threshold and (p is None or alpha is None or p < alpha)
    return Signal(name, value, threshold, "drift" if fired else "ok", n, p, detail)


def drift_report(
    batch_id: str,
    stats: dict,
    reference: dict,
    config: DriftConfig = DriftConfig(),
    confidences: Iterable[float] | None = None,
) -> DriftReport:
    """Every signal of one batch against the reference (see the module doc)."""
    n = int(stats["utterances"])
    c = config
    report = DriftReport(batch_id, n, config=c.to_dict())
    sig = report.signals

    if "band_hist" in stats and reference.get("band_hist"):
        per_band = [js_distance(b, r) for b, r in zip(stats["band_hist"], reference["band_hist"])]
        worst = int(np.argmax(per_band))
        sig.append(_judged("logmel_bands_js", float(np.mean(per_band)), c.band_js_threshold, n, c.min_utterances,
                           detail=f"mean over {len(per_band)} bands; worst band {worst} ({per_band[worst]:.3f})"))
    for key, label in (("duration", "duration_psi"), ("snr_db", "snr_psi"), ("speaking_rate_wps", "speaking_rate_psi")):
        b, r = stats[key]["hist"], reference["hist"].get(key)
        if r is None:
            continue
        detail = f"mean {stats[key].get('mean', float('nan')):.2f}" if stats[key].get("n") else ""
        b, r = coarsen(b, r)
        sig.append(_judged(label, psi(b, r), c.psi_threshold, n, c.min_utterances, chi2_homogeneity(b, r), c.alpha,
                           detail + f"; {len(b)} bins"))

    clip = stats["clipping"]["mean_clipped_fraction"] - reference.get("clipping_mean", 0.0)
    sig.append(_judged("clipping_rise", clip, c.clipping_threshold, n, c.min_utterances,
                       detail=f"{stats['clipping']['utterances_with_clipping']} utterances clipped"))
    for key, label in (("sample_rates", "sample_rate_mix_js"), ("formats", "codec_mix_js")):
        keys = sorted(set(stats.get(key, {})) | set(reference.get(key, {})))
        b = [stats.get(key, {}).get(k, 0) for k in keys]
        r = [reference.get(key, {}).get(k, 0) for k in keys]
        sig.append(_judged(label, js_distance(b, r), c.mix_js_threshold, n, c.min_utterances,
                           chi2_homogeneity(b, r), c.alpha, ", ".join(f"{k}: {v}" for k, v in zip(keys, b) if v)))

    words = stats.get("words", {})
    tokens = sum(words.values())
    vocab = reference.get("words", {})
    oov = sum(v for w, v in words.items() if w not in vocab) / tokens if tokens else 0.0
    # A finite reference never holds the whole vocabulary of its own population: Good-Turing puts the chance
    # that a new token from that population is unseen at (words seen once) / (tokens). Only OOV beyond that
    # expectation is drift, so a small reference does not make ordinary speech look new.
    ref_tokens = sum(vocab.values())
    expected = sum(1 for v in vocab.values() if v == 1) / ref_tokens if ref_tokens else 0.0
    new_words = sorted((w for w in words if w not in vocab), key=lambda w: -words[w])[:5]
    sig.append(_judged("oov_rate_excess", oov - expected, c.oov_threshold, n, c.min_utterances,
                       detail=f"OOV {oov:.3f} of {tokens} tokens vs {expected:.3f} expected"
                              + (f"; e.g. {', '.join(new_words)}" if new_words else "")))

    for col in SUBGROUP_COLUMNS:
        ours = {k: v["utterances"] for k, v in stats.get("subgroups", {}).get(col, {}).items()}
        theirs = {k: v["utterances"] for k, v in reference["subgroups"].get(col, {}).items()}
        keys = sorted(set(ours) | set(theirs))
        b, r = [ours.get(k, 0) for k in keys], [theirs.get(k, 0) for k in keys]
        unseen = sum(v for k, v in ours.items() if k not in theirs)
        sig.append(_judged(f"{col}_mix_js", js_distance(b, r), c.mix_js_threshold, n, c.min_utterances,
                           chi2_homogeneity(b, r), c.alpha, ", ".join(f"{k}: {ours[k]}" for k in sorted(ours))))
        sig.append(_judged(f"unseen_{col}_share", unseen / n if n else 0.0, c.unseen_share_threshold, n,
                           c.min_utterances, detail=", ".join(k for k in sorted(ours) if k not in theirs) or "none"))
        for value, entry in sorted(stats.get("subgroups", {}).get(col, {}).items()):
            m = entry["utterances"]
            name = f"{col}={value}"
            ref_group = reference["subgroups"].get(col, {}).get(value)
            if ref_group is None:
                report.subgroups.append(_judged(f"{name} (new)", m / n if n else 0.0, c.unseen_share_threshold, m,
                                                c.min_subgroup_utterances, detail="not in the training data"))
            elif "band_mean" in entry and "band_mean" in ref_group and reference.get("band_std"):
                shift = np.abs(np.asarray(entry["band_mean"]) - np.asarray(ref_group["band_mean"]))
                z = float(np.mean(shift / np.asarray(reference["band_std"])))
                report.subgroups.append(_judged(f"{name} band shift", z, c.subgroup_shift_threshold, m,
                                                c.min_subgroup_utterances, detail="mean |Δ band mean| / reference std"))

    if confidences is not None and sum(reference.get("confidence_hist") or []) > 0 and reference.get("confidence_mean") is not None:
        conf = list(confidences)
        b, r = coarsen(confidence_histogram(conf), reference["confidence_hist"])
        sig.append(_judged("confidence_psi", psi(b, r), c.psi_threshold, len(conf), c.min_utterances,
                           chi2_homogeneity(b, r), c.alpha, f"served model {reference.get('model_version', '?')}"))
        drop = reference.get("confidence_mean", 0.0) - (float(np.mean(conf)) if conf else 0.0)
        sig.append(_judged("confidence_drop", drop, c.confidence_drop_threshold, len(conf), c.min_utterances,
                           detail=f"mean {np.mean(conf) if conf else float('nan'):.3f} vs "
                                  f"{reference.get('confidence_mean', float('nan')):.3f} on the training population"))
    return report
