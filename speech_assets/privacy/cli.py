"""`python -m speech_assets erase ...` / `retention ...` — per-speaker erasure and the raw-audio retention sweep.

    erase --speaker ID --who NAME --why TEXT [--dry-run] [--json]
                              remove the speaker's audio, transcripts and features from main in one commit; mark the
                              models trained on them (the retrain sensor retrains production from scratch)
    erase status [--json]     erasures recorded (speaker digests, never ids) and the model versions they marked
    retention sweep --days N --who NAME [--dry-run] [--json]
                              remove the raw audio of batches published more than N days ago (metadata and features
                              stay; a tombstone says the audio is gone)

Keep the speaker id out of --why: the reason is kept in the append-only audit trail and in commit history.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from speech_assets.storage.base import StoreError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech_assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    top = parser.add_subparsers(dest="group", required=True)
    erase = top.add_parser("erase", help="per-speaker erasure from main")
    erase.add_argument("what", nargs="?", choices=("status",), help="'status': erasures recorded and marked models")
    erase.add_argument("--speaker", help="the speaker id as intake recorded it")
    erase.add_argument("--who", help="who asks for the erasure (kept in the audit trail)")
    erase.add_argument("--why", help="the reason, e.g. a request reference (no personal data)")
    erase.add_argument("--dry-run", action="store_true", help="say what would be erased; write nothing")
    erase.add_argument("--json", action="store_true")
    retention = top.add_parser("retention", help="the raw-audio retention sweep")
    rsub = retention.add_subparsers(dest="cmd", required=True)
    sweep = rsub.add_parser("sweep", help="remove raw audio of batches older than --days")
    sweep.add_argument("--days", type=float, required=True)
    sweep.add_argument("--who", required=True)
    sweep.add_argument("--dry-run", action="store_true")
    sweep.add_argument("--json", action="store_true")
    return parser


def _default_store():
    from speech_assets.storage.open import open_from_env

    return open_from_env()


def main(argv: list[str] | None = None, store_factory=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.group == "erase" and args.what is None and not (args.speaker and args.who and args.why):
        parser.error("erase needs --speaker, --who and --why (or 'erase status')")
    store, repo = (store_factory or _default_store)()
    try:
        if args.group == "erase":
            return _status(store, repo, args) if args.what == "status" else _erase(store, repo, args)
        return _sweep(store, repo, args)
    except (StoreError, ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _erase(store, repo, args) -> int:
    from speech_assets.privacy.erasure import erase_speaker

    result = erase_speaker(store, repo, args.speaker, actor=args.who, reason=args.why, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1, sort_keys=True))
        return 0
    print(result.message)
    if result.nothing_to_erase:
        return 0
    for b in result.batches:
        gone = f", {b.audio_already_gone} already gone" if b.audio_already_gone else ""
        print(f"  batch {b.batch_id}: {len(b.utterances)} utterances, {b.audio_objects} audio objects "
              f"({b.audio_bytes} bytes{gone}), feature sets {', '.join(b.feature_sets) or 'none'}")
    print(f"  probe set items: {result.probe_items_removed}; evaluation rows: {result.evaluation_rows_removed}")
    for m in result.affected_models or []:
        print(f"  model {m.model} {m.version}: {m.why}")
    if not result.affected_models:
        print("  no registered model trained on this speaker")
    if result.source_refs:
        print(f"  the landing zone (the uploader's inbox) still holds {len(result.source_refs)} source files of this "
              f"speaker: intake skips an erased speaker's rows in any later run, but delete them at the source:")
        for ref in result.source_refs:
            print(f"    {ref}")
    if not args.dry_run:
        print(f"  erasure {result.erasure_id}: commit {result.commit_id}, main at {result.merge_commit}")
        print("  older commits still reference the erased objects until the store's garbage collection runs")
    return 0


def _status(store, repo, args) -> int:
    from speech_assets.registry.registry import model_names
    from speech_assets.registry.marks import erasure_marks
    from speech_assets.privacy.erasure import list_erasures

    events = list_erasures(store, repo)
    marks = {name: erasure_marks(store, repo, name) for name in model_names(store, repo)}
    if args.json:
        print(json.dumps({"erasures": [e.to_json() for e in events],
                          "marked_models": {n: m for n, m in marks.items() if m}}, indent=1, sort_keys=True))
        return 0
    if not events:
        print("no erasure recorded")
    for e in events:
        ev = e.evidence
        print(f"{e.ts}  {e.event_id}  {e.subject}  by {e.actor}: {ev.get('utterances_removed', '?')} utterances in "
              f"{len(ev.get('batches', {}))} batches — {ev.get('reason', '')}")
    for name, versions in sorted(marks.items()):
        for version, ids in sorted(versions.items()):
            print(f"model {name} {version}: marked by {', '.join(ids)}")
    return 0


def _sweep(store, repo, args) -> int:
    from speech_assets.privacy.retention import sweep_raw_audio

    result = sweep_raw_audio(store, repo, args.days, datetime.now(timezone.utc), args.who, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1, sort_keys=True))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    if not result.batches:
        print(f"nothing to sweep: no batch published before {result.cutoff} still holds raw audio")
    for b in result.batches:
        print(f"  {b.batch_id}: published {b.published_at} ({b.publish_source}), {b.age_days:.1f} days old — "
              f"{verb} {b.objects} objects, {b.bytes} bytes")
    if result.unknown_age:
        print(f"  publish time unknown (kept): {', '.join(result.unknown_age)}")
    if result.merge_commit:
        print(f"{verb} {result.objects} objects ({result.bytes_freed} bytes) from main; event {result.event_id}, "
              f"commit {result.commit_id}, main at {result.merge_commit}")
    return 0
