"""What the demo prints at the end: the audit trail's view of what happened (and that it is intact, and which
model serves on what data), and where everything the demo made is."""

from __future__ import annotations

from speech_assets import settings
from speech_assets.settings import DEFAULT_REPOSITORY, data_home, landing_dir, local_store_dir


def print_operations_summary() -> None:
    """What the audit trail says now: what happened, that it is intact, and which model serves on what data."""
    from collections import Counter

    from speech_assets.governance.audit import timeline, verify_append_only
    from speech_assets.governance.served import served_at
    from speech_assets.storage.audit_log import utc_now
    from speech_assets.storage.open import open_from_env
    from speech_assets.training.artifacts import MODEL_NAME

    vs, repo = open_from_env()
    counts = Counter(f"{e.action}" for e in timeline(vs, repo))
    check = verify_append_only(vs, repo)
    print("\n## Operations\n")
    print("audit trail: " + ", ".join(f"{action} {n}" for action, n in sorted(counts.items())))
    print(f"append-only over main's history: {'OK' if check.ok else 'BROKEN'} "
          f"({check.commits_checked} commits, {check.audit_objects} audit objects)")
    now = utc_now()
    print(f"\n$ python -m speech_assets audit served-at {now.isoformat(timespec='seconds')}")
    print(served_at(vs, repo, MODEL_NAME, now).text())


def print_where() -> None:
    home = settings.dagster_home()
    print(
        f"""
Where things are:
  landing zone      {landing_dir()}
  local store       {local_store_dir()}  (repository '{DEFAULT_REPOSITORY}', branch main)
  Dagster home      {home}
Inspect the store:  .venv/bin/python -m speech_assets store log
                    .venv/bin/python -m speech_assets store ls main metadata/
The model registry: .venv/bin/python -m speech_assets models list asr   (models audit asr: every decision)
The service:        .venv/bin/python -m speech_assets serving status     (serving stop: stop it)
The audit trail:    .venv/bin/python -m speech_assets audit log -v        (audit served-at <ISO time>: which
                    model served then, trained on what data; audit verify: append-only + hash chains)
Privacy:            .venv/bin/python -m speech_assets erase --speaker ID --who NAME --why TEXT [--dry-run]
The ops dashboard:  {data_home() / "reports" / "ops_dashboard.html"}   (runbook: docs/runbook.md)
The Dagster UI (assets, metadata, sensors' tick logs): http://127.0.0.1:3000 while the demo's processes run;
  make stop         # stops the UI, the daemon and the service
  make ui           # = DAGSTER_HOME={home} .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000
"""
    )
