"""The demo's progress line: `[demo HH:MM:SS] what happened`, flushed at once (the demo runs for minutes)."""

from __future__ import annotations

import time


def log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)
