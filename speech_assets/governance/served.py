""""Which model served at time T, and what data was it trained on?" — answered from the audit trail alone.

The registry's per-model event log is replayed up to T: a `stage`/`rollback` event to `production` makes a version
the champion, one to `archived` retires it, one to `canary` starts a rollout, and the canary controller's `canary`
decisions carry the challenger's traffic weight. Because the registry is written before the service's routing
(see `serving/controller.py`), the answer is the registry's intent at T; the routing followed it within one
sensor tick.

The training data comes from the served version's lineage: its `data_commits` are the store commits of the
training manifest, read back to list the batches (with their publish events) and the split sizes used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from speech_assets.storage.audit_log import DATA_PUBLISH, parse_time, read_events
from speech_assets.intake.manifest import read_manifest_rows
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore


@dataclass(frozen=True)
class TrainingData:
    data_commit: str
    batches: dict[str, dict[str, int]]  # batch id -> split -> utterances
    speakers: int
    utterances: int
    published: dict[str, str] = field(default_factory=dict)  # batch id -> publish event time


@dataclass(frozen=True)
class ServedModel:
    version: str
    role: str  # "production" | "canary"
    since: str  # the event that put it there
    weight: float | None  # canary traffic percent (None: production, or a canary before its first step)
    created_by: str
    data: tuple[TrainingData, ...]
    erasure_marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServedAt:
    model: str
    at: str
    serving: tuple[ServedModel, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "at": self.at,
            "serving": [
                {"version": s.version, "role": s.role, "since": s.since, "weight": s.weight,
                 "created_by": s.created_by, "erasure_marks": list(s.erasure_marks),
                 "training_data": [
                     {"data_commit": d.data_commit, "utterances": d.utterances, "speakers": d.speakers,
                      "batches": d.batches, "published": d.published} for d in s.data]}
                for s in self.serving
            ],
        }

    def text(self) -> str:
        if not self.serving:
            return f"no version of {self.model} was serving at {self.at}"
        out = [f"{self.model} at {self.at}:"]
        for s in self.serving:
            share = f" at {s.weight:g}% of live traffic" if s.weight is not None else ""
            out.append(f"  {s.role:<10} {s.version}{share} (since {s.since}; registered by {s.created_by})")
            for d in s.data:
                out.append(f"    trained on manifest commit {d.data_commit[:12]}: {d.utterances} utterances, "
                           f"{d.speakers} speakers, {len(d.batches)} batches")
                for batch, splits in sorted(d.batches.items()):
                    split_text = ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
                    pub = d.published.get(batch)
                    out.append(f"      {batch:<24} {split_text}" + (f"  (published {pub})" if pub else ""))
            if s.erasure_marks:
                out.append(f"    marked (as of now) by erasure(s) {', '.join(s.erasure_marks)}: its training data held "
                           "speech erased since")
        return "\n".join(out)


def _training_data(store: VersionStore, repo: str, commit: str, published: dict[str, str]) -> TrainingData:
    try:
        rows = read_manifest_rows(store, repo, commit)
    except NotFoundError:
        return TrainingData(commit, {}, 0, 0)
    batches: dict[str, dict[str, int]] = {}
    for r in rows:
        splits = batches.setdefault(r["batch_id"], {})
        splits[r["split"]] = splits.get(r["split"], 0) + 1
    speakers = {r["speaker_key"] for r in rows}
    return TrainingData(commit, batches, len(speakers), len(rows),
                        {b: published[b] for b in batches if b in published})


def _erasure_marks(store: VersionStore, repo: str, ref: str, model: str, version: str) -> tuple[str, ...]:
    from speech_assets.registry.marks import erasure_marks  # privacy builds on intake; imported where needed

    return tuple(erasure_marks(store, repo, model, ref).get(version, ()))


def served_at(store: VersionStore, repo: str, model: str, at: datetime, ref: str = DEFAULT_BRANCH) -> ServedAt:
    commit = store.resolve(repo, ref)
    registry = ModelRegistry(store, repo)
    production: tuple[str, str] | None = None  # (version, since)
    canary: tuple[str, str] | None = None
    weight: float | None = None
    for e in registry.audit_log(model, ref=commit):
        if parse_time(e.ts) > at:
            break
        if e.to_stage == "production" and e.action in ("stage", "rollback"):
            production = (e.version, e.ts)
            if canary and canary[0] == e.version:
                canary, weight = None, None
        elif e.to_stage == "canary" and e.action == "stage":
            canary, weight = (e.version, e.ts), None
        elif e.action == "canary" and canary and canary[0] == e.version:
            w = (e.evidence.get("decision") or {}).get("weight")
            weight = float(w) if w is not None else weight
        elif e.to_stage == "archived":
            if production and production[0] == e.version:
                production = None
            if canary and canary[0] == e.version:
                canary, weight = None, None

    published = {ev.evidence.get("batch_id"): ev.ts for ev in read_events(store, repo, commit, action=DATA_PUBLISH)}
    serving = []
    for role, held, w in (("production", production, None), ("canary", canary, weight)):
        if held is None:
            continue
        mv = registry.get(model, held[0], ref=commit)
        data = tuple(_training_data(store, repo, c, published) for c in mv.lineage.data_commits)
        serving.append(ServedModel(held[0], role, held[1], w, mv.created_by, data,
                                   _erasure_marks(store, repo, commit, model, held[0])))
    return ServedAt(model, at.isoformat(), tuple(serving))
