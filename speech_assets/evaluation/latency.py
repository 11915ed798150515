"""Real-time factor (RTF): processing seconds per second of audio.

RTF < 1 means faster than real time.  It is measured on wall-clock time
(``time.perf_counter``) because that is what a caller waits for; the median
over repeats is reported because a shared machine produces occasional slow
outliers that a mean would absorb.  Warm-up calls are not timed: the first
call often pays for lazy initialization (model load, kernel selection,
allocator growth) that steady-state serving does not.

The function measures whatever ``transcribe_fn`` does; run it on CPU (the
caller moves its model there) so numbers stay comparable between runs.  The
result records the CPU count and platform for that reason.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RTFResult", "measure_rtf"]


@dataclass(frozen=True)
class RTFResult:
    rtf: float  # median over repeats
    rtf_per_repeat: tuple[float, ...]
    audio_seconds: float
    processing_seconds: float  # median processing time of one pass over all waveforms
    n_waveforms: int
    repeats: int
    warmup: int
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["rtf_per_repeat"] = list(self.rtf_per_repeat)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RTFResult":
        return cls(
            rtf=float(d["rtf"]),
            rtf_per_repeat=tuple(float(v) for v in d["rtf_per_repeat"]),
            audio_seconds=float(d["audio_seconds"]),
            processing_seconds=float(d["processing_seconds"]),
            n_waveforms=int(d["n_waveforms"]),
            repeats=int(d["repeats"]),
            warmup=int(d["warmup"]),
            machine=dict(d.get("machine", {})),
        )


def measure_rtf(
    transcribe_fn: Callable[[Any], Any],
    waveforms: Sequence[np.ndarray],
    sample_rate: int = 16000,
    warmup: int = 1,
    *,
    repeats: int = 3,
    batch: bool = False,
) -> RTFResult:
    """RTF of ``transcribe_fn`` over ``waveforms`` (1-D arrays at ``sample_rate``).

    ``batch=False`` calls ``transcribe_fn(waveform)`` once per waveform;
    ``batch=True`` calls ``transcribe_fn(waveforms)`` once per repeat.  Each
    repeat times one full pass; the RTF of a repeat is its processing time
    over the total audio duration.
    """
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    waves = list(waveforms)
    audio_seconds = sum(int(np.asarray(w).shape[-1]) for w in waves) / sample_rate
    if audio_seconds <= 0:
        raise ValueError("no audio: RTF is undefined")

    def one_pass() -> None:
        if batch:
            transcribe_fn(waves)
        else:
            for w in waves:
                transcribe_fn(w)

    for _ in range(warmup):
        # warm up on the first waveform only: enough to trigger lazy
        # initialization without doubling the cost of the measurement
        transcribe_fn(waves[:1] if batch else waves[0])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
    per_repeat = tuple(t / audio_seconds for t in times)
    return RTFResult(
        rtf=float(statistics.median(per_repeat)),
        rtf_per_repeat=per_repeat,
        audio_seconds=audio_seconds,
        processing_seconds=float(statistics.median(times)),
        n_waveforms=len(waves),
        repeats=repeats,
        warmup=warmup,
        machine={"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()},
    )
