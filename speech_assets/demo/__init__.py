"""The demo: the README's main job on the embedded defaults (`make demo`, `make stop`).

    cycle      `python -m speech_assets demo`: both acts in order, with the demo's sizes and loop settings
    landing    the simulated days dropped into the landing zone, one of them with broken uploads
    act_one    intake, features, the first model trained, gated, registered and served, and what it printed
    story      act two: the closed loop (drift, retrain, canary), watched from outside, and its summary
    report     what the audit trail says at the end, and where everything is
    processes  the Dagster daemon and UI the demo starts, leaves running or stops (`stop_all`: `make stop`)
    records    what the Dagster instance recorded (materializations and their metadata)
    progress   the demo's timestamped progress line

Nothing here triggers the platform's work: the demo drops batches and queues one job, as a user would; the
daemon's sensors and declarative automation do the rest.  It imports the platform's packages, never its
Dagster definitions (`speech_assets.defs`): it opens the store with `storage.open` and reaches the service
through `serving.targets`, as any client outside Dagster does.
"""

from speech_assets.demo.cycle import main
from speech_assets.demo.processes import stop_all

__all__ = ["main", "stop_all"]
