"""`python -m speech_assets approve ...` and `python -m speech_assets policy ...` — named approvals and the release
policy (kept in the versioned store: every change is a commit with its author, reason and audit event).

    approve MODEL VERSION --to production|canary --who NAME --why TEXT
                             record NAME's approval of a gated stage change (the canary controller promotes at its
                             next tick; a failed registered_model run can be re-materialized)
    policy show [--ref REF]  the release policy in force (JSON on stdout; the commit it was read at on stderr)
    policy set --file F --who NAME --why TEXT
                             store a new policy (validated first; every problem is listed)
    policy history [--limit N]   the commits that changed the policy, newest first
    policy default           the built-in default policy as JSON, to start a policy file from
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from speech_assets.governance.policy import (
    DEFAULT_POLICY,
    GATED_STAGES,
    POLICY_PATH,
    PolicyError,
    ReleasePolicy,
    load_policy,
    policy_history,
    read_policy,
    save_policy,
)
from speech_assets.storage.base import StoreError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech_assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    top = parser.add_subparsers(dest="top", required=True)
    p = top.add_parser("approve", help="approve a gated stage change of a registered model version")
    p.add_argument("model")
    p.add_argument("version")
    p.add_argument("--to", dest="to_stage", required=True, choices=GATED_STAGES)
    p.add_argument("--who", required=True, help="the approver's name (recorded in the audit trail)")
    p.add_argument("--why", required=True, help="why it is approved (recorded in the audit trail)")
    pol = top.add_parser("policy", help="the release policy in the store")
    sub = pol.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("show", help="the policy in force and the commit it was read at")
    p.add_argument("--ref", default="main")
    p = sub.add_parser("set", help="store a new policy from a JSON file")
    p.add_argument("--file", required=True, type=Path)
    p.add_argument("--who", required=True)
    p.add_argument("--why", required=True)
    p = sub.add_parser("history", help="commits that changed the policy")
    p.add_argument("--ref", default="main")
    p.add_argument("--limit", type=int, default=None, help="walk at most this many of main's latest commits")
    sub.add_parser("default", help="the built-in default policy (JSON)")
    return parser


def _open_store(store_factory):
    if store_factory is not None:
        return store_factory()
    from speech_assets.storage.open import open_from_env

    return open_from_env()


def main(argv: list[str] | None = None, store_factory=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.top == "policy" and args.cmd == "default":  # needs no store
        sys.stdout.write(DEFAULT_POLICY.to_bytes().decode())
        return 0
    try:
        store, repo = _open_store(store_factory)
        if args.top == "approve":
            return _approve(store, repo, args)
        return _policy(store, repo, args)
    except (PolicyError, StoreError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _approve(store, repo, args) -> int:
    from speech_assets.governance.approvals import approve, check_stage_change
    from speech_assets.registry.registry import ModelRegistry

    policy = load_policy(store, repo)
    a = approve(store, repo, args.model, args.version, args.to_stage, args.who, args.why, via="cli", policy=policy)
    print(f"recorded: {a.approver} approved {a.model} {a.version} -> {a.to_stage} at {a.ts} (event {a.event_id})")
    check = check_stage_change(store, repo, policy, ModelRegistry(store, repo), args.model, args.version,
                               args.to_stage)
    if not check.required:
        print(f"note: {check.message}")
    elif check.satisfied:
        print(f"{check.message}: the canary controller proceeds at its next tick; a registered_model run that "
              "stopped for it can be re-materialized")
    else:
        print(check.message)
    return 0


def _policy(store, repo, args) -> int:
    if args.cmd == "show":
        current = read_policy(store, repo, args.ref)
        where = (f"{POLICY_PATH} at commit {current.commit}" if current.stored
                 else f"built-in defaults: no {POLICY_PATH} at commit {current.commit}")
        print(f"# release policy: {where}", file=sys.stderr)
        sys.stdout.write(current.policy.to_bytes().decode())
    elif args.cmd == "set":
        policy = ReleasePolicy.from_bytes(args.file.read_bytes())
        commit = save_policy(store, repo, policy, args.who, args.why)
        print(f"release policy saved by {args.who.strip()} at commit {commit} (sha256 {policy.sha256[:12]})")
    elif args.cmd == "history":
        revisions = policy_history(store, repo, args.ref, limit=args.limit)
        if not revisions:
            print(f"no release policy stored on {args.ref}: the built-in defaults apply (`policy default`)")
        for r in revisions:
            ts = datetime.fromtimestamp(r.ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
            what = "removed" if r.sha256 is None else f"sha256 {r.sha256[:12]}"
            print(f"{r.commit[:12]}  {ts}  {r.actor or '?':<16} {what}  {r.reason or r.message}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
