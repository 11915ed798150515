"""The platform's append-only event log, kept in the versioned store beside the changes it records.

Platform events (data publish, erasure, retention, approval, policy change, ...) are one JSON object each,

    audit/_platform/<YYYYmmddTHHMMSSffffffZ>-<action>-<event id>.json

(model names cannot start with "_", so this folder never collides with a model's registry log under `audit/`).

A platform event is written on the same branch, and so lands on `main` in the same merge, as the change it
records (`stage_event`): a batch is never published without its publish event and vice versa. Events that
record nothing else in the store (an approval) go through their own branch (`record_event`). Event names are
unique (time + random id), so concurrent writers never conflict: no sequence number, no lock.

What reads the log — one timeline with the registry's model events, served-at-T, the append-only check — lives
in `speech_assets.governance`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from speech_assets.storage.base import DEFAULT_BRANCH, VersionStore
from speech_assets.storage.layout import PLATFORM_AUDIT_PREFIX
from speech_assets.storage.publish import publish_objects

# The actions platform events use (free text is allowed, these are the ones the platform writes).
DATA_PUBLISH = "data_publish"
ERASURE = "erasure"
RETENTION = "retention"
APPROVAL = "approval"
POLICY_CHANGE = "policy_change"
MODEL_MARKED = "model_marked"
SERVICE_RECOVERY = "service_recovery"  # the recovery sensor restarted the service, saw it back, or called a person


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """ISO 8601 (a trailing Z, or none = UTC) or a date → aware UTC datetime."""
    text = value.strip().replace("Z", "+00:00")
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class PlatformEvent:
    event_id: str
    ts: str  # ISO 8601 UTC
    actor: str
    action: str
    subject: str  # what the event is about: a batch id, "speaker:<hash>", "asr 2.0.0 -> production", ...
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)  # commit ids, counts, report links
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "ts": self.ts, "actor": self.actor, "action": self.action,
            "subject": self.subject, "summary": self.summary, "evidence": dict(self.evidence),
        }

    @classmethod
    def parse(cls, path: str, data: bytes) -> PlatformEvent:
        body = json.loads(data)
        return cls(body["event_id"], body["ts"], body["actor"], body["action"], body["subject"],
                   body.get("summary", ""), dict(body.get("evidence") or {}), path)


def new_event(action: str, actor: str, subject: str, summary: str, evidence: Mapping[str, Any] | None = None,
              ts: datetime | None = None) -> PlatformEvent:
    """A new event (not yet stored) with a unique path under the platform log; stamped `ts` (default: now).

    Raises ValueError on an unnamed actor or an action holding "/" or "-" (the path's separators)."""
    if not actor or not actor.strip():
        raise ValueError("an audit event needs a named actor")
    if not action or "/" in action or "-" in action:
        raise ValueError(f"invalid audit action {action!r} (use letters, digits and '_')")
    when = ts or utc_now()
    event_id = uuid.uuid4().hex[:16]
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"{PLATFORM_AUDIT_PREFIX}{stamp}-{action}-{event_id}.json"
    return PlatformEvent(event_id, iso(when), actor.strip(), action, subject, summary, dict(evidence or {}), path)


def event_bytes(event: PlatformEvent) -> bytes:
    return json.dumps(event.to_json(), sort_keys=True, indent=2, ensure_ascii=False, default=str).encode() + b"\n"


def stage_event(store: VersionStore, repo: str, branch: str, event: PlatformEvent) -> PlatformEvent:
    """Put `event` on `branch` (uncommitted): the caller's commit and merge carry it with the change it records."""
    store.put_object(repo, branch, event.path, event_bytes(event), content_type="application/json")
    return event


def record_event(store: VersionStore, repo: str, event: PlatformEvent, run_id: str = "") -> str:
    """Publish an event on its own (one that records nothing else in the store: an approval); returns main's
    merge commit."""
    return publish_objects(
        store, repo, {event.path: event_bytes(event)},
        branch_prefix=f"audit-{event.event_id}",
        message=f"audit: {event.action} {event.subject}",
        metadata={"audit_event": event.event_id, "action": event.action, "actor": event.actor, "run_id": run_id},
        content_types={event.path: "application/json"},
    )


def read_events(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH, *, action: str | None = None,
                since: datetime | None = None, until: datetime | None = None) -> list[PlatformEvent]:
    """Platform events at `ref`, oldest first (the time stamp leads the path, so path order is time order)."""
    commit = store.resolve(repo, ref)
    stats = list(store.list_objects(repo, commit, PLATFORM_AUDIT_PREFIX))
    events = [PlatformEvent.parse(s.path, data)
              for s, data in zip(stats, store.get_objects(repo, commit, [s.path for s in stats]))]
    out = []
    for e in events:
        if action and e.action != action:
            continue
        t = parse_time(e.ts)
        if (since and t < since) or (until and t > until):
            continue
        out.append(e)
    return out
