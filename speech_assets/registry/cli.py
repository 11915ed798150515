"""`models` commands: look at the registry and roll a model back.

    models list NAME                                 versions, stages and who registered them
    models show NAME VERSION                         one version's record (lineage, digests) as JSON
    models rollback NAME VERSION --who W --why TEXT  make a former production version production again
    models audit NAME                                the audit trail, then the chain verification

The store comes from `store_factory() -> (store, repo)` (a test hands in its own); without one, the configured
store (`speech_assets.storage.open`: lakeFS when LAKEFS_ENDPOINT is set, else the local store).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from speech_assets.registry.registry import ModelRegistry, RegistryError
from speech_assets.settings import DEFAULT_REPOSITORY
from speech_assets.storage.base import StoreError, VersionStore

DEFAULT_REPO = DEFAULT_REPOSITORY
_COMMANDS = ("list", "show", "rollback", "audit")

StoreFactory = Callable[[], tuple[VersionStore, str]]


def default_store_factory() -> tuple[VersionStore, str]:
    # Imported here so that callers wiring their own store never open the configured one.
    from speech_assets.storage.open import open_from_env

    return open_from_env()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech_assets", description="model registry commands")
    top = parser.add_subparsers(dest="group", required=True)
    models = top.add_parser("models", help="the model registry")
    sub = models.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="versions of a model and their stages")
    p.add_argument("name")
    p = sub.add_parser("show", help="one version's record as JSON")
    p.add_argument("name")
    p.add_argument("version")
    p = sub.add_parser("rollback", help="make a former production version production again")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--who", required=True, help="who is rolling back (recorded in the audit trail)")
    p.add_argument("--why", required=True, help="why (recorded in the audit trail)")
    p = sub.add_parser("audit", help="the audit trail and whether its hash chain is intact")
    p.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None, store_factory: StoreFactory | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Callers that dispatch on "models" themselves may pass the rest only; accept both spellings.
    if argv and argv[0] in _COMMANDS:
        argv = ["models", *argv]
    args = _parser().parse_args(argv)
    store, repo = (store_factory or default_store_factory)()
    registry = ModelRegistry(store, repo)
    try:
        return _run(registry, args)
    except (RegistryError, StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(registry: ModelRegistry, args: argparse.Namespace) -> int:
    name = args.name
    if args.cmd == "list":
        versions = registry.list_versions(name)
        if not versions:
            print(f"no versions of {name} registered")
            return 0
        print(f"{'VERSION':<10} {'STAGE':<11} {'BUMP':<8} {'CREATED_AT':<33} {'CREATED_BY':<16} CHECKPOINT")
        for mv in versions:
            print(
                f"{mv.version:<10} {mv.stage.value:<11} {mv.bump.value:<8} {mv.created_at:<33} "
                f"{mv.created_by:<16} {mv.checkpoint_sha256[:12]}"
            )
    elif args.cmd == "show":
        mv = registry.get(name, args.version)
        record = {**mv.record(), "stage": mv.stage.value, "read_at_commit": mv.commit_id}
        print(json.dumps(record, indent=2, sort_keys=True))
    elif args.cmd == "rollback":
        before = registry.production(name)
        mv = registry.rollback(name, args.version, actor=args.who, reason=args.why)
        replaced = f"; {before.version} archived" if before is not None else ""
        print(f"{name} {mv.version} is production again{replaced} (commit {mv.commit_id[:12]})")
    elif args.cmd == "audit":
        try:
            events = registry.audit_log(name)
        except (ValueError, KeyError, TypeError) as exc:
            # A damaged event must not hide the verification below, which says exactly what is wrong.
            print(f"could not read every audit event: {exc!r}", file=sys.stderr)
            events = []
        for e in events:
            print(
                f"#{e.seq:08d} {e.ts} {e.actor:<16} {e.action:<8} {e.version:<10} "
                f"{e.from_stage or 'new'} -> {e.to_stage}  {e.reason}"
            )
            if e.evidence:
                print(f"           evidence: {json.dumps(e.evidence, sort_keys=True)}")
        check = registry.verify_audit_chain(name)
        if not check.ok:
            print(f"audit trail of {name} is BROKEN:", file=sys.stderr)
            for problem in check.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        head = f", head {check.head_sha256[:12]}" if check.head_sha256 else ""
        print(f"audit chain OK: {check.events} events{head}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
