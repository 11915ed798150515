"""Per-batch summary statistics saved beside the features.

Drift detection reads these, never the raw audio, so its cost does not grow with the corpus. Histograms use
fixed bin edges (not data-dependent ones) so any two batches, or a batch and a training reference, can be
compared bin for bin (PSI, Jensen-Shannon) and summed into a reference distribution.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

LOGMEL_EDGES = np.linspace(-16.0, 8.0, 49)  # 48 bins per mel band, natural-log power
DURATION_EDGES = np.arange(0.0, 31.0, 1.0)
SNR_EDGES = np.arange(0.0, 65.0, 5.0)
RATE_EDGES = np.arange(0.0, 6.25, 0.25)  # words per second
SUBGROUP_COLUMNS = ("accent", "channel")


def _hist(values, edges) -> list[int]:
    values = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1] - 1e-9)
    return np.histogram(values, bins=edges)[0].astype(int).tolist()


def _summary(values) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    q10, q50, q90 = np.percentile(v, [10, 50, 90])
    return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "p10": float(q10), "p50": float(q50), "p90": float(q90)}


def band_histograms(frames: np.ndarray) -> np.ndarray:
    """[n_mels, bins] counts of log-mel values per band on LOGMEL_EDGES (uniform: binned arithmetically, one
    bincount for all bands — a searchsorted per value was as costly as the features themselves)."""
    n_bins = len(LOGMEL_EDGES) - 1
    lo, width = LOGMEL_EDGES[0], LOGMEL_EDGES[1] - LOGMEL_EDGES[0]
    scaled = (frames - np.float32(lo)) * np.float32(1.0 / width)
    np.clip(scaled, 0, n_bins - 1, out=scaled)
    n_bands = frames.shape[1]
    # int16 indices (80 bands x 48 bins < 2^15): a quarter of the memory traffic of int64
    idx = scaled.astype(np.int16)
    idx += np.arange(n_bands, dtype=np.int16) * n_bins
    return np.bincount(idx.ravel(), minlength=n_bands * n_bins).reshape(n_bands, n_bins)


def speaking_rate(text: str, duration_s: float) -> float | None:
    words = len(text.split())
    return words / duration_s if duration_s > 0 else None


def batch_stats(features: list[np.ndarray], rows: list[dict], frames: np.ndarray | None = None) -> dict:
    """`features[i]` is the [frames, n_mels] log-mel of `rows[i]` (a batch metadata row); `frames`, when
    given, is the same data already back to back (saves a concatenation)."""
    durations = [r["duration_s"] for r in rows]
    snrs = [r["snr_db"] if r.get("snr_db") is not None else r.get("est_snr_db") for r in rows]
    rates = [speaking_rate(r["text"], r["duration_s"]) for r in rows]
    clipped = np.asarray([r.get("clipped_fraction") or 0.0 for r in rows], dtype=np.float64)
    out: dict = {
        "utterances": len(rows),
        "audio_seconds": float(sum(durations)),
        "frames": int(sum(f.shape[0] for f in features)),
        "duration": {**_summary(durations), "hist": _hist(durations, DURATION_EDGES)},
        "snr_db": {**_summary(snrs), "hist": _hist([s for s in snrs if s is not None], SNR_EDGES)},
        "speaking_rate_wps": {**_summary(rates), "hist": _hist([r for r in rates if r is not None], RATE_EDGES)},
        "clipping": {
            "mean_clipped_fraction": float(clipped.mean()) if clipped.size else 0.0,
            "utterances_with_clipping": int((clipped > 0).sum()),
        },
        "sample_rates": dict(Counter(str(r.get("original_sample_rate")) for r in rows)),
        "formats": dict(Counter(str(r.get("original_format")) for r in rows)),
        "words": dict(Counter(w for r in rows for w in r["text"].split())),
        "edges": {
            "logmel": LOGMEL_EDGES.tolist(),
            "duration": DURATION_EDGES.tolist(),
            "snr_db": SNR_EDGES.tolist(),
            "speaking_rate_wps": RATE_EDGES.tolist(),
        },
    }
    utt_band_sums = None
    if features:
        if frames is None:
            frames = np.concatenate(features, axis=0)
        # Per-utterance band sums and sums of squares in one pass: batch moments and subgroup means are sums of
        # these (no second pass over the frames, no re-concatenation per subgroup).
        starts = np.cumsum([0] + [f.shape[0] for f in features])[:-1]
        # float32 within an utterance (a few hundred frames), float64 across utterances.
        utt_band_sums = np.add.reduceat(frames, starts, axis=0).astype(np.float64)
        utt_band_sq = np.add.reduceat(np.square(frames), starts, axis=0).astype(np.float64)
        utt_frames = np.asarray([f.shape[0] for f in features], dtype=np.float64)
        n = utt_frames.sum()
        mean = utt_band_sums.sum(axis=0) / n
        out["band_mean"] = mean.tolist()
        out["band_var"] = np.maximum(utt_band_sq.sum(axis=0) / n - mean**2, 0.0).tolist()
        out["band_hist"] = band_histograms(frames).tolist()
    subgroups: dict = {}
    for col in SUBGROUP_COLUMNS:
        values = sorted({r.get(col) or "unknown" for r in rows})
        subgroups[col] = {}
        for v in values:
            members = [i for i, r in enumerate(rows) if (r.get(col) or "unknown") == v]
            entry = {
                "utterances": len(members),
                "audio_seconds": float(sum(durations[i] for i in members)),
                "duration_mean": float(np.mean([durations[i] for i in members])),
                "snr_db": _summary([snrs[i] for i in members]),
                "speaking_rate_wps": _summary([rates[i] for i in members]),
            }
            if utt_band_sums is not None and members:
                entry["band_mean"] = (utt_band_sums[members].sum(axis=0) / utt_frames[members].sum()).tolist()
            subgroups[col][v] = entry
    out["subgroups"] = subgroups
    return out
