"""Progress lines with an ETA (`speech_assets.progress`), as the Dagster log and the demo's terminal show them."""

from __future__ import annotations

from speech_assets.progress import ProgressMeter, format_duration, progress_logger


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_eta_is_the_mean_step_time_times_the_steps_left():
    clock, lines = _Clock(), []
    meter = ProgressMeter("fine-tune", total=10, emit=lines.append, every_s=5.0, clock=clock)
    clock.t = 2.0
    assert meter.advance(loss="2.000") == "fine-tune: 1/10 steps (10 %), 2.00 s/step, ETA 18 s, loss 2.000"
    clock.t = 4.0
    assert meter.advance() is None  # under every_s since the last line: not emitted
    clock.t = 8.0
    meter.advance(2)
    assert meter.eta_s() == 12.0 and lines[-1].endswith("ETA 12 s")
    clock.t = 20.0
    meter.advance(6)
    assert lines[-1] == "fine-tune: 10/10 steps (100 %), 2.00 s/step, took 20 s"
    assert meter.done() == lines[-1] and len(lines) == 3  # the final line is not repeated


def test_durations_read_like_a_person_writes_them():
    assert [format_duration(s) for s in (5, 91, 3725)] == ["5 s", "1 min 31 s", "1 h 02 min"]


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)


def test_backend_events_become_log_lines_once():
    log = _Log()
    progress = progress_logger(log, "training", every_s=0.0)
    assert progress({"event": "step", "step": 10, "of": 20, "loss": 1.5}) is None  # never asks to stop
    progress({"event": "step", "step": 5, "of": 10, "message": "fine-tune: 5/10 steps, ETA 10 s"})
    progress({"event": "eval", "step": 20, "dev_wer": 0.25})
    assert log.lines[0].startswith("training: 10/20 steps (50 %)") and "loss 1.500" in log.lines[0]
    assert log.lines[1] == "training: fine-tune: 5/10 steps, ETA 10 s"  # a backend's own line, not metered again
    assert log.lines[2] == "training: step 20: dev WER 0.2500" and len(log.lines) == 3


def test_the_first_event_counts_the_time_already_spent():
    log = _Log()
    progress = progress_logger(log, "training", every_s=0.0)
    progress({"event": "step", "step": 10, "of": 40, "elapsed_s": 20.0})
    # 10 steps in 20 s: 2 s a step, 30 steps left (not "ETA 0 s")
    assert "2.00 s/step" in log.lines[0] and "ETA 1 min 00 s" in log.lines[0]
