"""Progress a person can follow: a step counter that says how far along a long step is and when it will end.

    meter = ProgressMeter("fine-tune", total=60, emit=log.info, every_s=10)
    for step in range(60):
        ...
        meter.advance(loss=f"{loss:.3f}")      # logs "fine-tune: 12/60 (20 %), 1.9 s/step, ETA 1 min 31 s, loss 2.310"
    meter.done()

The estimate is the mean seconds per step so far times the steps left (steps of a run cost about the same; a
first step that pays for warm-up skews it only until a few more have run). Lines go to `emit` at most every
`every_s` seconds, plus the first and the last step, so a terminal or a Dagster log is not flooded.
No dependency beyond the standard library: every floor may use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressMeter:
    def __init__(self, what: str, total: int, emit: Callable[[str], None] | None = None, every_s: float = 10.0,
                 unit: str = "step", clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.emit, self.every_s, self.unit = what, max(0, int(total)), emit, every_s, unit
        self.clock = clock
        self.started = clock()
        self.done_steps = 0
        self._last_emit: float | None = None
        self.lines: list[str] = []  # every line emitted, for a report or a test

    def eta_s(self) -> float | None:
        if self.done_steps == 0 or self.total == 0:
            return None
        per = (self.clock() - self.started) / self.done_steps
        return per * max(0, self.total - self.done_steps)

    def line(self, **fields) -> str:
        elapsed = self.clock() - self.started
        parts = [f"{self.what}: {self.done_steps}/{self.total} {self.unit}s"]
        if self.total:
            parts[0] += f" ({100 * self.done_steps / self.total:.0f} %)"
        if self.done_steps:
            parts.append(f"{elapsed / self.done_steps:.2f} s/{self.unit}")
        eta = self.eta_s()
        if eta is not None and self.done_steps < self.total:
            parts.append(f"ETA {format_duration(eta)}")
        elif self.done_steps >= self.total:
            parts.append(f"took {format_duration(elapsed)}")
        parts += [f"{k} {v}" for k, v in fields.items()]
        return ", ".join(parts)

    def advance(self, n: int = 1, **fields) -> str | None:
        """Count `n` more steps; emit a line when it is time (returns it, or None)."""
        self.done_steps += n
        now = self.clock()
        due = (self._last_emit is None or now - self._last_emit >= self.every_s or self.done_steps >= self.total)
        if not due:
            return None
        self._last_emit = now
        text = self.line(**fields)
        self.lines.append(text)
        if self.emit is not None:
            self.emit(text)
        return text

    def done(self, **fields) -> str:
        text = self.line(**fields)
        if not self.lines or self.lines[-1] != text:
            self.lines.append(text)
            if self.emit is not None:
                self.emit(text)
        return text


def progress_logger(log, what: str = "training", every_s: float = 15.0):
    """A backend's progress events -> lines on `log` (a `logging.Logger` or Dagster's context.log) with an ETA
    (`ProgressMeter`), for the Dagster log and the demo's terminal. A message is logged as it comes; step events
    without one carry `step` and `of` and are metered here."""
    meters: dict[str, ProgressMeter] = {}

    def progress(event: dict) -> None:
        kind = event.get("event")
        if event.get("message"):
            log.info(f"{what}: {event['message']}")
        if kind == "eval":
            log.info(f"{what}: step {event.get('step')}: dev WER {event.get('dev_wer', float('nan')):.4f}")
        elif kind in ("step", "encode", "export", "decode") and event.get("of") and not event.get("message"):
            # a backend that formats its own progress line (with its ETA) sends it as the message; others are
            # metered here
            label = {"step": what}.get(kind, f"{what} ({kind})")
            meter = meters.get(kind)
            if meter is None or meter.total != int(event["of"]):
                meter = meters[kind] = ProgressMeter(label, int(event["of"]), emit=log.info, every_s=every_s,
                                                     unit="step" if kind == "step" else "utterance")
                # the first event may come after steps already ran: count the time they took (the backend's own
                # elapsed_s), or the first ETA would be zero
                meter.started -= float(event.get("elapsed_s") or 0.0)
            fields = {"loss": f"{event['loss']:.3f}"} if isinstance(event.get("loss"), float) else {}
            meter.advance(int(event.get("step", meter.done_steps + 1)) - meter.done_steps, **fields)
        return None  # never asks a backend to stop

    return progress
