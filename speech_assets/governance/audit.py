"""Reading the platform's append-only audit trail: one timeline, and the append-only check over history.

Two kinds of event make up the trail:

* model events (register, stage, rollback, canary) — the registry's own hash-chained log per model,
  `audit/<model>/<seq>-<action>.json` (see `speech_assets.registry.registry`);
* platform events (data publish, erasure, retention, approval, policy change, ...) — one JSON object each,

      audit/_platform/<YYYYmmddTHHMMSSffffffZ>-<action>-<event id>.json

  (model names cannot start with "_", so this folder never collides with a model's log).

The platform events are written by `speech_assets.storage.audit_log` (storage's event log); this module only
reads them. A platform event is written on the same branch, and so lands on `main` in the same merge, as the
change it records (`stage_event`): a batch is never published without its publish event and vice versa. Events
that record nothing else in the store (an approval) go through their own branch (`record_event`). Event names
are unique (time + random id), so concurrent writers never conflict: no sequence number, no lock.

Append-only is checked, not trusted: `verify_append_only` walks `main`'s history and reports any commit that
removed or rewrote an object under `audit/` — the local store's commit ids are content digests, so history
itself cannot be rewritten without changing every later id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from speech_assets.registry.registry import ModelRegistry, model_names
from speech_assets.storage.audit_log import iso, parse_time, read_events
from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.layout import AUDIT_ROOT


# -- one timeline over both kinds -------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    ts: str
    kind: str  # "platform" | "model"
    actor: str
    action: str
    subject: str
    summary: str
    evidence: Mapping[str, Any]
    path: str


def timeline(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> list[TimelineEntry]:
    """Every platform event and every model's registry event at `ref`, in time order."""
    commit = store.resolve(repo, ref)
    entries = [
        TimelineEntry(e.ts, "platform", e.actor, e.action, e.subject, e.summary, e.evidence, e.path)
        for e in read_events(store, repo, commit)
    ]
    registry = ModelRegistry(store, repo)
    for name in model_names(store, repo, commit):
        for e in registry.audit_log(name, ref=commit):
            change = f"{e.from_stage or 'new'} -> {e.to_stage}"
            entries.append(TimelineEntry(
                e.ts, "model", e.actor, e.action, f"{name} {e.version}", f"{change}: {e.reason}",
                {**dict(e.evidence), "commits": dict(e.commits)}, e.path,
            ))
    entries.sort(key=lambda x: (parse_time(x.ts), x.path))
    return entries


# -- append-only, checked over history ----------------------------------------------------------------------
@dataclass(frozen=True)
class AppendOnlyReport:
    ok: bool
    commits_checked: int
    audit_objects: int
    problems: tuple[str, ...] = ()


def verify_append_only(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH,
                       limit: int | None = None) -> AppendOnlyReport:
    """Every commit on `ref`'s history against its first parent: an audit object may be added, never removed
    or changed."""
    commits = store.log(repo, ref, limit=limit)
    problems = []
    for c in commits:
        if not c.parents:
            continue
        for change in store.diff(repo, c.parents[0], c.id, prefix=AUDIT_ROOT):
            if change.type != "added":
                problems.append(f"commit {c.id[:12]} ({c.message!r}) {change.type} {change.path}")
    head = commits[0].id if commits else store.resolve(repo, ref)
    count = sum(1 for _ in store.list_objects(repo, head, AUDIT_ROOT))
    return AppendOnlyReport(not problems, len(commits), count, tuple(problems))


def format_entries(entries: Iterable[TimelineEntry], verbose: bool = False) -> str:
    lines = []
    for e in entries:
        ts = iso(parse_time(e.ts))  # one spelling for both kinds (the registry writes +00:00, events Z)
        lines.append(f"{ts}  {e.kind:<8} {e.action:<13} {e.actor:<18} {e.subject}  — {e.summary}")
        if verbose and e.evidence:
            lines.append(f"    evidence: {json.dumps(e.evidence, sort_keys=True, default=str)}")
    return "\n".join(lines)
