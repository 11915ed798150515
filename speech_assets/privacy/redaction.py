"""How much personal data intake redacted from the transcripts, per batch and per PII kind.

Intake redacts PII in every transcript before anything is written (speech_assets.audio.pii) and records the
counts of each kind in the batch's staged commit (metadata key `redactions`); the batch's `data_publish` audit event
carries the same counts (`evidence.redactions`) and names that commit (`evidence.audited_commit`), whose metadata
also holds the number of redacted utterances.  Batches published before the audit trail existed fall back to their
metadata table's `redactions` (count per utterance) and `redaction_kinds` (which kinds, per utterance) columns:
exact per kind where an utterance had one kind, a lower bound (one each) where it had several — the report says
which source each row came from and whether its per-kind split is exact.

The report is published to `reports/redactions.json` (only when it changed).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from speech_assets.audio.pii import PII_KINDS
from speech_assets.intake.metadata import metadata_batch_ids, read_metadata_table
from speech_assets.storage.audit_log import DATA_PUBLISH, parse_time, read_events
from speech_assets.storage.base import DEFAULT_BRANCH, NotFoundError, VersionStore
from speech_assets.storage.layout import REDACTION_REPORT_PATH as REPORT_PATH
from speech_assets.storage.publish import publish_objects


@dataclass
class BatchRedactions:
    batch_id: str
    utterances: int  # accepted at intake
    redacted_utterances: int
    redactions: int
    by_kind: dict[str, int]
    source: str  # "intake" (publish event + staged commit) | "metadata" (the table's columns)
    exact: bool  # per-kind split exact (always for "intake")
    utterances_now: int  # rows in main's metadata now (fewer after an erasure)
    audited_commit: str = ""


@dataclass
class RedactionReport:
    ref_commit: str
    batches: list[BatchRedactions] = field(default_factory=list)

    @property
    def totals(self) -> dict:
        kinds = Counter()
        for b in self.batches:
            kinds.update(b.by_kind)
        return {
            "batches": len(self.batches),
            "utterances": sum(b.utterances for b in self.batches),
            "redacted_utterances": sum(b.redacted_utterances for b in self.batches),
            "redactions": sum(b.redactions for b in self.batches),
            "by_kind": {k: int(kinds.get(k, 0)) for k in _kinds(kinds)},
        }

    def to_json(self) -> dict:
        totals = self.totals
        return {"ref_commit": self.ref_commit, "kinds": list(totals["by_kind"]), "totals": totals,
                "batches": [asdict(b) for b in self.batches]}

    def markdown(self) -> str:
        kinds = list(self.totals["by_kind"])
        head = ["batch", "utterances", "redacted", "redacted %", *kinds, "source"]
        rows = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (3 + len(kinds)) + "---|"]
        for b in self.batches:
            pct = 100.0 * b.redacted_utterances / b.utterances if b.utterances else 0.0
            src = b.source + ("" if b.exact else " (per kind: lower bound)")
            rows.append("| " + " | ".join([b.batch_id, str(b.utterances), str(b.redacted_utterances), f"{pct:.1f}",
                                           *(str(b.by_kind.get(k, 0)) for k in kinds), src]) + " |")
        t = self.totals
        pct = 100.0 * t["redacted_utterances"] / t["utterances"] if t["utterances"] else 0.0
        rows.append("| " + " | ".join(["**total**", str(t["utterances"]), str(t["redacted_utterances"]), f"{pct:.1f}",
                                       *(str(t["by_kind"].get(k, 0)) for k in kinds), ""]) + " |")
        return "\n".join(rows)


def _kinds(counts) -> list[str]:
    # The platform's kinds in their usual order, then any other kind a future intake records.
    return [*PII_KINDS, *sorted(k for k in counts if k not in PII_KINDS)]


def _from_metadata(batch_id: str, rows: list[dict]) -> BatchRedactions:
    by_kind: Counter[str] = Counter()
    exact = True
    for r in rows:
        n = int(r.get("redactions") or 0)
        kinds = [k for k in (r.get("redaction_kinds") or "").split(",") if k]
        if n and len(kinds) == 1:
            by_kind[kinds[0]] += n
        elif n and kinds:
            exact = exact and n == len(kinds)
            by_kind.update(kinds)  # at least one of each
    return BatchRedactions(batch_id, len(rows), sum(1 for r in rows if r.get("redactions")),
                           sum(int(r.get("redactions") or 0) for r in rows), dict(by_kind), "metadata", exact, len(rows))


def redaction_report(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH) -> RedactionReport:
    """The redaction counts of every batch at `ref`: from intake's record where there is one, else the table's."""
    commit = store.resolve(repo, ref)
    latest = _latest_publish_events(store, repo, commit)
    report = RedactionReport(commit)
    for batch_id in metadata_batch_ids(store, repo, commit):
        rows = read_metadata_table(store, repo, commit, batch_id, columns=["redactions", "redaction_kinds"]).to_pylist()
        event = latest.get(batch_id)
        report.batches.append(_from_metadata(batch_id, rows) if event is None
                              else _from_intake(store, repo, batch_id, rows, event))
    report.batches.sort(key=lambda b: b.batch_id)
    return report


def _latest_publish_events(store: VersionStore, repo: str, commit: str) -> dict:
    """batch id -> its newest `data_publish` event that carries redaction counts."""
    latest = {}
    for e in read_events(store, repo, commit, action=DATA_PUBLISH):
        b = e.evidence.get("batch_id")
        if b and isinstance(e.evidence.get("redactions"), dict):
            if b not in latest or parse_time(e.ts) >= parse_time(latest[b].ts):
                latest[b] = e
    return latest


def _from_intake(store: VersionStore, repo: str, batch_id: str, rows: list[dict], event) -> BatchRedactions:
    ev = event.evidence
    by_kind = {k: int(v) for k, v in ev["redactions"].items()}
    audited = str(ev.get("audited_commit") or "")
    try:
        redacted_utts = int(store.get_commit(repo, audited).metadata["redacted_utterances"]) if audited else None
    except (NotFoundError, KeyError, ValueError):
        redacted_utts = None
    if redacted_utts is None:  # the staged commit is unreadable: count the table (exact unless erased since)
        redacted_utts = sum(1 for r in rows if r.get("redactions"))
    return BatchRedactions(batch_id, int(ev.get("accepted", len(rows))), redacted_utts, sum(by_kind.values()),
                           by_kind, "intake", True, len(rows), audited)


def report_bytes(report: RedactionReport) -> bytes:
    return json.dumps(report.to_json(), sort_keys=True, indent=1).encode()


def publish_redaction_report(store: VersionStore, repo: str, report: RedactionReport, run_id: str = "") -> tuple[str, bool]:
    """Publish `reports/redactions.json` to main unless it is unchanged; returns (main commit, changed).

    `ref_commit` is left out of the comparison: a report whose counts are equal is the same report."""
    body = {**report.to_json(), "ref_commit": None}
    try:
        old = json.loads(store.get_object(repo, DEFAULT_BRANCH, REPORT_PATH))
        if {**old, "ref_commit": None} == json.loads(json.dumps(body)):
            return store.resolve(repo, DEFAULT_BRANCH), False
    except NotFoundError:
        pass
    data = report_bytes(report)
    commit = publish_objects(
        store, repo, {REPORT_PATH: data}, branch_prefix="redaction-report",
        message=f"redaction report: {report.totals['redactions']} redactions in {report.totals['batches']} batches",
        metadata={"run_id": run_id, "ref_commit": report.ref_commit,
                  "sha256": hashlib.sha256(data).hexdigest()},
        content_types={REPORT_PATH: "application/json"},
    )
    return commit, True
