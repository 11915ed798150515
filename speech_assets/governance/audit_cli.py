"""`python -m speech_assets audit ...` — read the audit trail.

    audit [log] [--since T] [--until T] [--action A] [--kind platform|model] [-v] [--json]
                                  every data publish, registration, promotion, rollback, erasure, retention sweep,
                                  approval and policy change, oldest first (-v adds the evidence)
    audit served-at T [--model asr] [--json]
                                  which model version(s) served at time T (ISO 8601, UTC unless it says otherwise)
                                  and the data each was trained on (manifest commit, batches, splits)
    audit verify                  the trail is append-only over main's history, and every model's hash chain holds
"""

from __future__ import annotations

import argparse
import json
import sys

from speech_assets.governance.audit import format_entries, timeline, verify_append_only

from speech_assets.registry.registry import model_names

from speech_assets.storage.audit_log import parse_time
from speech_assets.governance.served import served_at
from speech_assets.registry.registry import ModelRegistry
from speech_assets.storage.base import StoreError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech_assets audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("log", help="the whole trail, oldest first")
    p.add_argument("--since", type=parse_time)
    p.add_argument("--until", type=parse_time)
    p.add_argument("--action", help="e.g. data_publish, erasure, approval, stage, rollback, canary")
    p.add_argument("--kind", choices=("platform", "model"))
    p.add_argument("-v", "--verbose", action="store_true", help="print each event's evidence")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("served-at", help="which model served at time T, trained on what data")
    p.add_argument("at", type=parse_time, help="ISO 8601 time, e.g. 2026-11-26T04:30:00Z")
    p.add_argument("--model", default="asr")
    p.add_argument("--json", action="store_true")
    sub.add_parser("verify", help="append-only over history + every model's hash chain")
    return parser


def main(argv: list[str] | None = None, store_factory=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("--") or argv[0] == "-v":
        argv = ["log", *argv]
    args = _parser().parse_args(argv)
    if store_factory is None:
        from speech_assets.storage.open import open_from_env

        store, repo = open_from_env()
    else:
        store, repo = store_factory()
    try:
        return _run(store, repo, args)
    except (StoreError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(store, repo: str, args: argparse.Namespace) -> int:
    if args.cmd == "log":
        entries = [
            e for e in timeline(store, repo)
            if (args.kind is None or e.kind == args.kind)
            and (args.action is None or e.action == args.action)
            and (args.since is None or parse_time(e.ts) >= args.since)
            and (args.until is None or parse_time(e.ts) <= args.until)
        ]
        if args.json:
            print(json.dumps([e.__dict__ for e in entries], indent=2, default=str))
        else:
            print(format_entries(entries, verbose=args.verbose) or "no audit events")
        return 0
    if args.cmd == "served-at":
        answer = served_at(store, repo, args.model, args.at)
        print(json.dumps(answer.to_json(), indent=2) if args.json else answer.text())
        return 0
    # verify
    report = verify_append_only(store, repo)
    ok = report.ok
    print(f"append-only: {'OK' if report.ok else 'BROKEN'} — {report.commits_checked} commits checked, "
          f"{report.audit_objects} audit objects")
    for problem in report.problems:
        print(f"  - {problem}")
    registry = ModelRegistry(store, repo)
    for name in model_names(store, repo):
        check = registry.verify_audit_chain(name)
        ok &= check.ok
        print(f"model {name}: hash chain {'OK' if check.ok else 'BROKEN'} ({check.events} events)")
        for problem in check.problems:
            print(f"  - {problem}")
    return 0 if ok else 1
