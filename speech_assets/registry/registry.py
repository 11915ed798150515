"""The model registry, kept inside the versioned store next to the data the models were trained on.

Keeping models in the same store as the data means a model's lineage (the manifest commit it was trained
on) and the model itself share one history, and every registry change is an ordinary commit that can be
inspected, diffed and tagged like any other. Only the `VersionStore` port is used, so the registry works
unchanged on the embedded local store and on lakeFS.

Layout (at the head of the published branch, `main` by default):

    models/<name>/stages.json                  stage of every version, production history, audit head
    models/<name>/<version>/model.json         the version's record: digests, lineage, who and when
    models/<name>/<version>/checkpoint.pt      the weights, exactly as registered
    models/<name>/<version>/eval_report.json   (and eval_report.html when given)
    models/<name>/<version>/calibration.json   canonical JSON, so equal maps have equal digests
    audit/<name>/<seq:08d>-<action>.json       append-only audit events, hash-chained

Write protocol (every operation: register, set_stage, rollback):

    1. read `main`'s head H and plan the change from the tree at H (pure: nothing written yet)
    2. create a private branch at H; put the objects and the new stages.json; commit C1 (metadata: who/why)
    3. write the audit event(s), which name H and C1, and the new audit head in stages.json; commit C2
    4. merge the branch into `main`; delete the branch

Steps 2-4 are one `storage.publish.branch_transaction`; the re-plan below is `storage.publish.retry_on_conflict`.

Every operation rewrites `models/<name>/stages.json`, and the new content always differs (it carries a
fresh operation id). So two operations on the same model planned from the same head both change that path
from the same base, and whichever merges second gets a ConflictError with nothing written: it then
re-plans from the new head (where, say, the version number it picked is taken) and tries again. Operations
on different models touch disjoint paths and merge cleanly. This is optimistic concurrency through the
store's own merge, so it needs no lock service and behaves the same on lakeFS.

Stage transitions (set_stage); anything else raises IllegalTransitionError:

    candidate  -> canary, production, archived
    canary     -> production, archived
    production -> archived           (retires the model: no production until another is promoted)
    archived   -> (none)             only `rollback` brings a version back, and only to production

Promoting to production (or canary) archives the version that held that stage, so there is at most one
production and one canary per model. `rollback(name, v)` is allowed only for a version that has been in
production before (a rollback restores a known-good model; it must not become a way around the promotion
gates) and whose checkpoint is still present and matches its digest.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Mapping, Sequence

from speech_assets.registry.semver import Bump, Fingerprint, NoChangeError, next_version, parse_version, sort_versions
from speech_assets.storage.base import DEFAULT_BRANCH, ConcurrentUpdateError, ConflictError, NotFoundError, VersionStore
from speech_assets.storage.layout import (  # noqa: F401 (the path helpers are the registry's public names too)
    MODELS_PREFIX,
    audit_path,
    audit_prefix,
    stages_path,
    version_prefix,
)
from speech_assets.storage.publish import Transaction, branch_transaction, retry_on_conflict

__all__ = [
    "ALLOWED_TRANSITIONS",
    "AuditEvent",
    "AuditVerification",
    "IllegalTransitionError",
    "Lineage",
    "MissingCheckpointError",
    "ModelRegistry",
    "ModelVersion",
    "NoChangeError",
    "RegistryBusyError",
    "RegistryError",
    "Stage",
    "UnknownVersionError",
]

SCHEMA_VERSION = 1
GENESIS_SHA256 = "0" * 64  # the "previous event" digest of a model's first audit event
_BRANCH_PREFIX = "registry-"

# Model names become path segments and branch-name parts: keep them to one unambiguous spelling.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_AUDIT_NAME_RE = re.compile(r"(\d{8})-(register|stage|rollback|canary)\.json")


class Stage(str, Enum):
    CANDIDATE = "candidate"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"


ALLOWED_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.CANARY, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.CANARY: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset(),
}

# Stages a single version may hold per model; promoting into one archives its previous holder.
_EXCLUSIVE = (Stage.PRODUCTION, Stage.CANARY)


# -- errors -----------------------------------------------------------------------------------------------
class RegistryError(Exception):
    """Base class of every error the registry raises (store errors pass through unchanged)."""


class UnknownVersionError(RegistryError, LookupError):
    """The model or version is not registered (at the ref read)."""


class IllegalTransitionError(RegistryError):
    """The stage change is not in ALLOWED_TRANSITIONS (or a rollback's preconditions do not hold)."""


class MissingCheckpointError(RegistryError):
    """A version's checkpoint is absent from the store or no longer matches its recorded digest."""


class RegistryBusyError(RegistryError):
    """The operation kept losing merge races and gave up after the configured number of attempts."""


# -- records ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lineage:
    """Where a model came from: enough to rebuild it, or to tell what a new version changed."""

    data_commits: tuple[str, ...]  # store commit id(s) of the training manifest(s)
    feature_config_hash: str
    vocabulary_hash: str
    code_version: str  # e.g. the git commit of the training code
    training_config: Mapping[str, Any]
    seed: int
    parent_version: str | None = None  # the version this one was warm-started from, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "data_commits": list(self.data_commits),
            "feature_config_hash": self.feature_config_hash,
            "vocabulary_hash": self.vocabulary_hash,
            "code_version": self.code_version,
            "training_config": dict(self.training_config),
            "seed": self.seed,
            "parent_version": self.parent_version,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Lineage:
        return cls(
            data_commits=tuple(value["data_commits"]),
            feature_config_hash=value["feature_config_hash"],
            vocabulary_hash=value["vocabulary_hash"],
            code_version=value["code_version"],
            training_config=dict(value["training_config"]),
            seed=int(value["seed"]),
            parent_version=value.get("parent_version"),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version as read at `commit_id` (the store commit the view was read at or produced)."""

    name: str
    version: str
    stage: Stage
    bump: Bump
    created_at: str  # ISO 8601, UTC
    created_by: str
    checkpoint_sha256: str
    checkpoint_size: int
    calibration_sha256: str
    eval_report_sha256: str
    has_eval_report_html: bool
    lineage: Lineage
    commit_id: str

    @property
    def prefix(self) -> str:
        return version_prefix(self.name, self.version)

    @property
    def checkpoint_path(self) -> str:
        return self.prefix + "checkpoint.pt"

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(
            feature_config_hash=self.lineage.feature_config_hash,
            vocabulary_hash=self.lineage.vocabulary_hash,
            checkpoint_sha256=self.checkpoint_sha256,
            calibration_sha256=self.calibration_sha256,
        )

    def record(self) -> dict[str, Any]:
        """The model.json content (everything but the stage and the read commit, which live elsewhere)."""
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "version": self.version,
            "bump": self.bump.value,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "checkpoint": {
                "path": self.checkpoint_path, "sha256": self.checkpoint_sha256, "size": self.checkpoint_size,
            },
            "calibration": {"path": self.prefix + "calibration.json", "sha256": self.calibration_sha256},
            "eval_report": {
                "path": self.prefix + "eval_report.json",
                "sha256": self.eval_report_sha256,
                "html_path": self.prefix + "eval_report.html" if self.has_eval_report_html else None,
            },
            "lineage": self.lineage.to_json(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stage: Stage, commit_id: str) -> ModelVersion:
        return cls(
            name=record["name"],
            version=record["version"],
            stage=stage,
            bump=Bump(record["bump"]),
            created_at=record["created_at"],
            created_by=record["created_by"],
            checkpoint_sha256=record["checkpoint"]["sha256"],
            checkpoint_size=int(record["checkpoint"]["size"]),
            calibration_sha256=record["calibration"]["sha256"],
            eval_report_sha256=record["eval_report"]["sha256"],
            has_eval_report_html=record["eval_report"].get("html_path") is not None,
            lineage=Lineage.from_json(record["lineage"]),
            commit_id=commit_id,
        )


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    ts: str
    actor: str
    action: str  # register | stage | rollback | canary (a rollout decision that changes no stage)
    model: str
    version: str
    from_stage: str | None  # None for register
    to_stage: str
    reason: str
    op_id: str  # events written by one operation share it (a promotion and the archive it caused)
    commits: Mapping[str, str]  # base: main head it was planned from; change: the commit making the change
    prev_sha256: str
    sha256: str  # digest of the stored bytes (what the next event's prev_sha256 must equal)
    path: str
    evidence: Mapping[str, Any] = field(default_factory=dict)  # the numbers a decision was taken on

    @classmethod
    def parse(cls, path: str, data: bytes) -> AuditEvent:
        body = json.loads(data)
        return cls(
            seq=int(body["seq"]),
            ts=body["ts"],
            actor=body["actor"],
            action=body["action"],
            model=body["model"],
            version=body["version"],
            from_stage=body.get("from_stage"),
            to_stage=body["to_stage"],
            reason=body.get("reason", ""),
            op_id=body.get("op_id", ""),
            commits=dict(body.get("commits", {})),
            prev_sha256=body["prev_sha256"],
            sha256=_sha256(data),
            path=path,
            evidence=dict(body.get("evidence") or {}),
        )


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    events: int
    head_sha256: str | None
    problems: tuple[str, ...] = ()


# -- paths ------------------------------------------------------------------------------------------------
def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid model name {name!r}: use lowercase letters, digits, '-' and '_' (max 63)")
    return name


def model_names(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> list[str]:
    """The models that have a stages file at `ref`."""
    names = set()
    for s in store.list_objects(repo, ref, MODELS_PREFIX):
        parts = s.path.split("/")
        if len(parts) == 3 and parts[2] == "stages.json":
            names.add(parts[1])
    return sorted(names)


# -- helpers ----------------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(value: Any) -> bytes:
    # Sorted keys make equal content byte-identical (so digests compare meaning); indent keeps it diffable.
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def _json_bytes(value: bytes | str | Mapping[str, Any], what: str) -> bytes:
    """The stored form of a JSON document given as bytes, text or a mapping; rejects non-JSON early."""
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        return _dump(value)
    try:
        json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    return data


@dataclass
class _State:
    """stages.json, parsed."""

    stages: dict[str, Stage] = field(default_factory=dict)
    production_history: list[str] = field(default_factory=list)
    audit_seq: int = 0
    audit_sha256: str = GENESIS_SHA256

    def holder(self, stage: Stage) -> str | None:
        holders = [v for v, s in self.stages.items() if s is stage]
        return holders[0] if holders else None

    def latest(self) -> str | None:
        return sort_versions(self.stages)[-1] if self.stages else None

    def to_json(self, name: str, op: Mapping[str, str]) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "model": name,
            "stages": {v: self.stages[v].value for v in sort_versions(self.stages)},
            "production_history": list(self.production_history),
            "audit_head": {"seq": self.audit_seq, "sha256": self.audit_sha256},
            # A fresh id per operation guarantees that two concurrent operations never write identical
            # content here, so the second merge always conflicts instead of silently combining.
            "last_op": dict(op),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> _State:
        head = value.get("audit_head", {})
        return cls(
            stages={v: Stage(s) for v, s in value.get("stages", {}).items()},
            production_history=list(value.get("production_history", [])),
            audit_seq=int(head.get("seq", 0)),
            audit_sha256=head.get("sha256", GENESIS_SHA256),
        )


@dataclass(frozen=True)
class _StageChange:
    version: str
    from_stage: Stage | None
    to_stage: Stage
    reason: str


@dataclass
class _Plan:
    """What one operation writes: objects, the new state and the audit events describing it."""

    version: str  # the version the caller asked about (its view is returned)
    state: _State
    changes: list[_StageChange]
    objects: list[tuple[str, bytes, str]] = field(default_factory=list)  # (path, data, content type)
    evidence: Mapping[str, Any] | None = None  # recorded in the requested change's event


# -- the registry -----------------------------------------------------------------------------------------
class ModelRegistry:
    """Model versions, their stages and an append-only audit trail, stored in `repo` of a VersionStore.

    Reads default to the head of `branch` (resolved once per call, so each answer is one consistent
    snapshot); pass `ref` (a commit id or tag) to read the registry as it was.
    """

    def __init__(
        self,
        store: VersionStore,
        repo: str,
        *,
        branch: str = DEFAULT_BRANCH,
        clock: Callable[[], datetime] | None = None,
        max_attempts: int = 50,
    ):
        self.store = store
        self.repo = repo
        self.branch = branch
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.max_attempts = max_attempts

    # -- reads ------------------------------------------------------------------------------------------
    def get(self, name: str, version: str, ref: str | None = None) -> ModelVersion:
        commit = self._resolve(ref)
        state = self._load_state(check_name(name), commit)
        return self._read_version(name, version, state, commit)

    def list_versions(self, name: str, ref: str | None = None) -> list[ModelVersion]:
        """Every version of `name`, in ascending semantic order; empty for an unknown model."""
        commit = self._resolve(ref)
        state = self._load_state(check_name(name), commit)
        return [self._read_version(name, v, state, commit) for v in sort_versions(state.stages)]

    def production(self, name: str, ref: str | None = None) -> ModelVersion | None:
        return self._holder(name, Stage.PRODUCTION, ref)

    def canary(self, name: str, ref: str | None = None) -> ModelVersion | None:
        return self._holder(name, Stage.CANARY, ref)

    def checkpoint(self, name: str, version: str, ref: str | None = None) -> bytes:
        """The checkpoint bytes, verified against the digest recorded at registration."""
        mv = self.get(name, version, ref)
        try:
            data = self.store.get_object(self.repo, mv.commit_id, mv.checkpoint_path)
        except NotFoundError:
            raise MissingCheckpointError(f"{name} {version}: checkpoint {mv.checkpoint_path} is missing") from None
        if _sha256(data) != mv.checkpoint_sha256:
            raise MissingCheckpointError(
                f"{name} {version}: checkpoint {mv.checkpoint_path} does not match its recorded sha256 "
                f"{mv.checkpoint_sha256}"
            )
        return data

    def eval_report(self, name: str, version: str, ref: str | None = None, html: bool = False) -> bytes:
        mv = self.get(name, version, ref)
        if html and not mv.has_eval_report_html:
            raise UnknownVersionError(f"{name} {version} was registered without an HTML eval report")
        path = mv.prefix + ("eval_report.html" if html else "eval_report.json")
        return self.store.get_object(self.repo, mv.commit_id, path)

    def calibration(self, name: str, version: str, ref: str | None = None) -> dict[str, Any]:
        mv = self.get(name, version, ref)
        return json.loads(self.store.get_object(self.repo, mv.commit_id, mv.prefix + "calibration.json"))

    def audit_log(self, name: str, ref: str | None = None) -> list[AuditEvent]:
        """Every audit event of `name`, oldest first (zero-padded sequence numbers sort by path)."""
        commit = self._resolve(ref)
        return [
            AuditEvent.parse(obj.path, self.store.get_object(self.repo, commit, obj.path))
            for obj in self.store.list_objects(self.repo, commit, audit_prefix(check_name(name)))
        ]

    def verify_audit_chain(self, name: str, ref: str | None = None, check_history: bool = True) -> AuditVerification:
        """Check that the audit trail of `name` is complete and unmodified.

        Three independent checks, each catching what the previous cannot:
          * the chain: sequence numbers run 1..N without gaps, and each event's prev_sha256 is the digest of
            the event before it, so a modified or deleted event breaks the link after it;
          * the head: stages.json records the last event's seq and digest, so deleting or editing the
            newest event (which has no successor to break) is caught too;
          * the history (`check_history`): every registry commit records in its metadata the seq and digest
            of the audit head it wrote. Commits are immutable, so even a tamperer who rewrites the whole
            chain and the head consistently cannot make the stored events match what was recorded then.
        """
        commit = self._resolve(ref)
        check_name(name)
        problems: list[str] = []
        prefix = audit_prefix(name)
        digests: dict[int, str] = {}
        expected_seq, expected_prev = 1, GENESIS_SHA256
        for obj in self.store.list_objects(self.repo, commit, prefix):
            match = _AUDIT_NAME_RE.fullmatch(obj.path[len(prefix):])
            if match is None:
                problems.append(f"{obj.path}: not an audit event name")
                continue
            seq, action = int(match[1]), match[2]
            data = self.store.get_object(self.repo, commit, obj.path)
            digest = _sha256(data)
            if seq != expected_seq:
                problems.append(
                    f"{obj.path}: expected event #{expected_seq}, found #{seq} (events missing or duplicated)"
                )
            try:
                body = json.loads(data)
                if body.get("seq") != seq or body.get("action") != action or body.get("model") != name:
                    problems.append(f"{obj.path}: content (seq/action/model) does not match its name")
                if body.get("prev_sha256") != expected_prev:
                    problems.append(
                        f"{obj.path}: prev_sha256 does not match the event before it "
                        "(that event was modified or deleted)"
                    )
            except (ValueError, AttributeError):
                problems.append(f"{obj.path}: not a JSON audit event")
            digests[seq] = digest
            expected_seq, expected_prev = seq + 1, digest

        state = self._load_state(name, commit)
        last_seq = expected_seq - 1
        if (state.audit_seq, state.audit_sha256) != (last_seq, expected_prev):
            problems.append(
                f"{stages_path(name)} records audit head #{state.audit_seq} {state.audit_sha256[:12]}, but the "
                f"trail ends at #{last_seq} {expected_prev[:12]} (newest events deleted or modified)"
            )

        if check_history:
            recorded: dict[int, tuple[str, str]] = {}
            for c in self.store.log(self.repo, commit):
                md = c.metadata
                if md.get("registry_model") != name or "registry_audit_seq" not in md:
                    continue
                seq, digest = int(md["registry_audit_seq"]), md.get("registry_audit_sha256", "")
                if seq in recorded and recorded[seq][0] != digest:
                    problems.append(
                        f"history records two different events as #{seq} "
                        f"(commits {c.id[:12]}, {recorded[seq][1][:12]})"
                    )
                recorded.setdefault(seq, (digest, c.id))
            for seq, (digest, commit_id) in sorted(recorded.items()):
                if seq not in digests:
                    problems.append(f"event #{seq}, written in commit {commit_id[:12]}, is missing")
                elif digests[seq] != digest:
                    problems.append(
                        f"event #{seq} differs from the digest recorded when it was written (commit {commit_id[:12]})"
                    )
        return AuditVerification(
            ok=not problems,
            events=len(digests),
            head_sha256=expected_prev if digests else None,
            problems=tuple(problems),
        )

    # -- writes -----------------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        checkpoint_bytes: bytes,
        *,
        data_commits: Sequence[str],
        feature_config_hash: str,
        vocabulary_hash: str,
        code_version: str,
        training_config: Mapping[str, Any],
        seed: int,
        eval_report_json: bytes | str | Mapping[str, Any],
        calibration_json: bytes | str | Mapping[str, Any],
        actor: str,
        parent_version: str | None = None,
        eval_report_html: bytes | str | None = None,
        base_version: str | None = None,
        reason: str = "",
    ) -> ModelVersion:
        """Register a new version as a candidate; its number follows semver.py's rules.

        The change is classified against `base_version` when given (e.g. the version being recalibrated),
        else against the current production version, else against the latest version. Raises NoChangeError
        when the new model is identical to that reference or to any other registered version.
        """
        check_name(name)
        _check_actor(actor)
        if not checkpoint_bytes:
            raise ValueError("checkpoint_bytes is empty")
        if isinstance(data_commits, str) or not data_commits or not all(isinstance(c, str) and c for c in data_commits):
            raise ValueError("data_commits must be a non-empty sequence of commit ids (the training data lineage)")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        for field_name, value in (
            ("feature_config_hash", feature_config_hash),
            ("vocabulary_hash", vocabulary_hash),
            ("code_version", code_version),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{field_name} must be a non-empty string")
        for v in (parent_version, base_version):
            if v is not None:
                parse_version(v)
        checkpoint_bytes = bytes(checkpoint_bytes)
        eval_json = _json_bytes(eval_report_json, "eval_report_json")
        # Canonical form, so that re-serialising the same map does not look like a recalibration.
        calibration = _dump(json.loads(_json_bytes(calibration_json, "calibration_json")))
        html = eval_report_html.encode("utf-8") if isinstance(eval_report_html, str) else eval_report_html
        lineage = Lineage(
            data_commits=tuple(data_commits),
            feature_config_hash=feature_config_hash,
            vocabulary_hash=vocabulary_hash,
            code_version=code_version,
            training_config=json.loads(json.dumps(dict(training_config))),  # JSON-safe, detached copy
            seed=seed,
            parent_version=parent_version,
        )
        new = Fingerprint(feature_config_hash, vocabulary_hash, _sha256(checkpoint_bytes), _sha256(calibration))

        def plan(state: _State, base: str) -> _Plan:
            for v, what in ((parent_version, "parent_version"), (base_version, "base_version")):
                if v is not None and v not in state.stages:
                    raise UnknownVersionError(f"{what} {v} is not a registered version of {name}")
            reference = base_version or state.holder(Stage.PRODUCTION) or state.latest()
            previous = self._read_version(name, reference, state, base).fingerprint if reference else None
            version, bump = next_version(reference, previous, new, state.stages)
            # The reference is only one version; a retried training job re-registering an older artifact
            # must not mint a second number for the same model either.
            for other in state.stages:
                if other != reference and self._read_version(name, other, state, base).fingerprint == new:
                    raise NoChangeError(f"identical (features, vocabulary, weights, calibration) to {name} {other}")
            mv = ModelVersion(
                name=name,
                version=version,
                stage=Stage.CANDIDATE,
                bump=bump,
                created_at=self._now(),
                created_by=actor,
                checkpoint_sha256=new.checkpoint_sha256,
                checkpoint_size=len(checkpoint_bytes),
                calibration_sha256=new.calibration_sha256,
                eval_report_sha256=_sha256(eval_json),
                has_eval_report_html=html is not None,
                lineage=lineage,
                commit_id=base,
            )
            objects = [
                (mv.checkpoint_path, checkpoint_bytes, "application/octet-stream"),
                (mv.prefix + "eval_report.json", eval_json, "application/json"),
                (mv.prefix + "calibration.json", calibration, "application/json"),
                (mv.prefix + "model.json", _dump(mv.record()), "application/json"),
            ]
            if html is not None:
                objects.append((mv.prefix + "eval_report.html", bytes(html), "text/html"))
            new_state = replace(state, stages={**state.stages, version: Stage.CANDIDATE})
            why = reason or f"{bump.value} version" + (f" (compared with {reference})" if reference else "")
            return _Plan(version, new_state, [_StageChange(version, None, Stage.CANDIDATE, why)], objects)

        return self._apply(name, "register", actor, plan)

    def set_stage(
        self, name: str, version: str, stage: Stage | str, actor: str, reason: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Move `version` to `stage` (see ALLOWED_TRANSITIONS); promoting archives the previous holder.

        `evidence` (JSON-able: metrics, rule verdicts, report links) is stored in the audit event, so the trail
        says what the change was decided on, not only who made it."""
        check_name(name)
        _check_actor(actor)
        _check_reason(reason)
        target = _stage(stage)

        def plan(state: _State, base: str) -> _Plan:
            current = self._current_stage(name, version, state)
            if target not in ALLOWED_TRANSITIONS[current]:
                allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current])) or "none (use rollback)"
                raise IllegalTransitionError(
                    f"{name} {version}: {current.value} -> {target.value} is not allowed "
                    f"(from {current.value}: {allowed})"
                )
            if target in _EXCLUSIVE:
                # Whatever serves traffic must be loadable: refuse before archiving the version it replaces.
                self._require_checkpoint(name, version, state, base)
            changes = [_StageChange(version, current, target, reason)]
            changes += self._displace(state, target, version, f"superseded by {version}: {reason}")
            return replace(self._plan_changes(version, state, changes), evidence=_evidence(evidence))

        return self._apply(name, "stage", actor, plan)

    def record_decision(
        self, name: str, version: str, actor: str, reason: str, evidence: Mapping[str, Any]
    ) -> ModelVersion:
        """Record a rollout decision that changes no stage (a canary stepping its traffic up) in the audit trail."""
        check_name(name)
        _check_actor(actor)
        _check_reason(reason)

        def plan(state: _State, base: str) -> _Plan:
            current = self._current_stage(name, version, state)
            changes = [_StageChange(version, current, current, reason)]
            return replace(self._plan_changes(version, state, changes), evidence=_evidence(evidence))

        return self._apply(name, "canary", actor, plan)

    def rollback(
        self, name: str, to_version: str, actor: str, reason: str, evidence: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Make `to_version` (a former production version) production again; the current one is archived."""
        check_name(name)
        _check_actor(actor)
        _check_reason(reason)

        def plan(state: _State, base: str) -> _Plan:
            current = self._current_stage(name, to_version, state)
            if current is Stage.PRODUCTION:
                raise IllegalTransitionError(f"{name} {to_version} is already in production")
            if to_version not in state.production_history:
                raise IllegalTransitionError(
                    f"{name} {to_version} has never been in production, so there is nothing to roll back to; "
                    "promote it with set_stage instead"
                )
            self._require_checkpoint(name, to_version, state, base)
            changes = [_StageChange(to_version, current, Stage.PRODUCTION, reason)]
            changes += self._displace(state, Stage.PRODUCTION, to_version, f"rolled back to {to_version}: {reason}")
            return replace(self._plan_changes(to_version, state, changes), evidence=_evidence(evidence))

        return self._apply(name, "rollback", actor, plan)

    # -- internals --------------------------------------------------------------------------------------
    def _now(self) -> str:
        return self._clock().astimezone(timezone.utc).isoformat(timespec="microseconds")

    def _resolve(self, ref: str | None) -> str:
        return self.store.resolve(self.repo, ref or self.branch)

    def _load_state(self, name: str, commit: str) -> _State:
        try:
            data = self.store.get_object(self.repo, commit, stages_path(name))
        except NotFoundError:
            return _State()
        return _State.from_json(json.loads(data))

    def _holder(self, name: str, stage: Stage, ref: str | None) -> ModelVersion | None:
        commit = self._resolve(ref)
        state = self._load_state(check_name(name), commit)
        version = state.holder(stage)
        return None if version is None else self._read_version(name, version, state, commit)

    def _current_stage(self, name: str, version: str, state: _State) -> Stage:
        try:
            return state.stages[version]
        except KeyError:
            known = ", ".join(sort_versions(state.stages)) or "none"
            raise UnknownVersionError(f"{name} {version} is not registered (known versions: {known})") from None

    def _read_version(self, name: str, version: str, state: _State, commit: str) -> ModelVersion:
        stage = self._current_stage(name, version, state)
        try:
            record = json.loads(self.store.get_object(self.repo, commit, version_prefix(name, version) + "model.json"))
        except NotFoundError:
            raise UnknownVersionError(
                f"{name} {version} is listed in {stages_path(name)} but has no model.json"
            ) from None
        return ModelVersion.from_record(record, stage, commit)

    def _require_checkpoint(self, name: str, version: str, state: _State, commit: str) -> None:
        mv = self._read_version(name, version, state, commit)
        try:
            stat = self.store.stat_object(self.repo, commit, mv.checkpoint_path)
        except NotFoundError:
            raise MissingCheckpointError(f"{name} {version}: checkpoint {mv.checkpoint_path} is missing") from None
        if stat.checksum != mv.checkpoint_sha256:
            # The store's checksum may be another algorithm (lakeFS reports an ETag for objects written
            # outside the adapter), so only the content itself can settle it.
            data = self.store.get_object(self.repo, commit, mv.checkpoint_path)
            if _sha256(data) != mv.checkpoint_sha256:
                raise MissingCheckpointError(
                    f"{name} {version}: checkpoint {mv.checkpoint_path} no longer matches its recorded digest"
                )

    @staticmethod
    def _displace(state: _State, target: Stage, version: str, reason: str) -> list[_StageChange]:
        if target not in _EXCLUSIVE:
            return []
        holder = state.holder(target)
        if holder is None or holder == version:
            return []
        return [_StageChange(holder, target, Stage.ARCHIVED, reason)]

    @staticmethod
    def _plan_changes(version: str, state: _State, changes: list[_StageChange]) -> _Plan:
        stages = dict(state.stages)
        history = list(state.production_history)
        for change in changes:
            stages[change.version] = change.to_stage
            if change.to_stage is Stage.PRODUCTION and change.from_stage is not Stage.PRODUCTION:
                history.append(change.version)
        return _Plan(version, replace(state, stages=stages, production_history=history), changes)

    def _apply(self, name: str, action: str, actor: str, plan_fn: Callable[[_State, str], _Plan]) -> ModelVersion:
        """Plan on main's head, write on a private branch, merge; re-plan and retry when the merge loses a race.

        Raises RegistryBusyError after `max_attempts` lost races; a domain error of `plan_fn` surfaces at once,
        before anything is written."""

        def attempt(n: int) -> tuple[_Plan, str]:
            base = self._resolve(None)
            plan = plan_fn(self._load_state(name, base), base)
            op_id = uuid.uuid4().hex
            # A unique name per attempt: a branch left behind by a crash is never merged and never reused.
            branch = f"{_BRANCH_PREFIX}{name.replace('_', '-')}-{op_id[:16]}"
            with branch_transaction(self.store, self.repo, branch, base=base, into=self.branch) as tx:
                return plan, self._write(name, action, actor, plan, tx, op_id)

        def backoff(n: int) -> None:
            # Another operation on this model merged first and nothing of ours reached main; the jitter keeps
            # racing writers from colliding again on the next attempt.
            time.sleep(random.uniform(0, min(0.5, 0.005 * 2**n)))

        plan, merged = retry_on_conflict(
            attempt, attempts=self.max_attempts, errors=(ConflictError, ConcurrentUpdateError), backoff=backoff,
            exhausted=lambda last: RegistryBusyError(
                f"{action} {name}: gave up after {self.max_attempts} attempts lost merge races"),
        )
        return self.get(name, plan.version, ref=merged)

    def _write(self, name: str, action: str, actor: str, plan: _Plan, tx: Transaction, op_id: str) -> str:
        """Write `plan` on `tx`'s branch in two commits (the change, then the audit events naming it); merge."""
        ts = self._now()
        reason = plan.changes[0].reason  # the requested change's; displaced versions' reasons derive from it
        op = {"id": op_id, "action": action, "actor": actor, "ts": ts, "reason": reason}
        who = {
            "registry_model": name,
            "registry_action": action,
            "registry_version": plan.version,
            "registry_actor": actor,
            "registry_reason": reason,
            "registry_op": op_id,
        }
        summary = ", ".join(
            f"{c.version} {c.from_stage.value if c.from_stage else 'new'} -> {c.to_stage.value}" for c in plan.changes
        )
        message = f"registry {action} {name}: {summary}"
        for path, data, content_type in plan.objects:
            tx.put(path, data, content_type=content_type)
        tx.put(stages_path(name), _dump(plan.state.to_json(name, op)), content_type="application/json")
        change_commit = tx.commit(message, who, committer=f"registry/{actor}")

        # The events name the commit that made the change, so they are written in a second commit.
        seq, prev = plan.state.audit_seq, plan.state.audit_sha256
        for i, change in enumerate(plan.changes):
            seq += 1
            event = {
                "schema": SCHEMA_VERSION,
                "seq": seq,
                "ts": ts,
                "model": name,
                "actor": actor,
                "action": action,
                "version": change.version,
                "from_stage": change.from_stage.value if change.from_stage else None,
                "to_stage": change.to_stage.value,
                "reason": change.reason,
                "op_id": op_id,
                "commits": {"base": tx.base, "change": change_commit},
                "prev_sha256": prev,
            }
            if i == 0 and plan.evidence:
                event["evidence"] = plan.evidence
            data = _dump(event)
            tx.put(audit_path(name, seq, action), data, content_type="application/json")
            prev = _sha256(data)
        final = replace(plan.state, audit_seq=seq, audit_sha256=prev)
        tx.put(stages_path(name), _dump(final.to_json(name, op)), content_type="application/json")
        audit = {
            **who,
            "registry_audit_seq": str(seq),
            "registry_audit_sha256": prev,
            "registry_change_commit": change_commit,
        }
        tx.commit(f"audit {name} #{seq}", audit, committer=f"registry/{actor}")
        return tx.merge(message, audit)


def _evidence(evidence: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Evidence as canonical JSON data (refused early if it is not JSON-able: it must survive the store)."""
    if evidence is None:
        return None
    try:
        return json.loads(json.dumps(dict(evidence), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"evidence must be JSON data without NaN/inf: {exc}") from None


def _check_actor(actor: str) -> None:
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("actor must name who is making the change")


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must say why the stage changes (it goes into the audit trail)")


def _stage(stage: Stage | str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(s.value for s in Stage)}") from None
