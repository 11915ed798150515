"""`python -m speech_assets <command>` (also installed as `speech-assets`).

    demo                     the demo cycle on the embedded defaults (leaves the UI, daemon and service running)
    stop                     stop what the demo left running
    simulate                 a simulated landing batch (see `speech_assets.simulation.cli`)
    import-corpus            a corpus folder as a landing batch (see `speech_assets.audio.cli`)
    store log|ls|branches|quarantine   look inside the versioned store
    models list|show|rollback|audit    the model registry (see `speech_assets.registry.cli`)
    serving status|stop|start  the local deployment: address, PID, bento, champion/challenger and weights (start: back with
                             the bento and routing it had)
    audit [log|served-at|verify]   the platform audit trail; which model served at a time, on what data
    approve / policy         release policy (versioned in the store) and named approvals of gated steps
    erase / retention        per-speaker erasure from main; the raw-audio retention sweep
"""

from __future__ import annotations

import argparse
import io
import sys


def _store_main(argv: list[str]) -> int:
    from speech_assets.storage.open import open_from_env

    parser = argparse.ArgumentParser(prog="speech_assets store")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_log = sub.add_parser("log", help="commits reachable from a ref, newest first")
    p_log.add_argument("ref", nargs="?", default="main")
    p_log.add_argument("-n", type=int, default=20)
    p_ls = sub.add_parser("ls", help="objects at a ref")
    p_ls.add_argument("ref", nargs="?", default="main")
    p_ls.add_argument("prefix", nargs="?", default="")
    sub.add_parser("branches", help="branches and their heads")
    p_q = sub.add_parser("quarantine", help="rejected files of a batch and why")
    p_q.add_argument("batch_id")
    p_q.add_argument("--ref", default="main")
    p_f = sub.add_parser("fsck", help="re-hash every object at a ref; report damaged or missing content")
    p_f.add_argument("ref", nargs="?", default="main")
    p_f.add_argument("--prefix", default="")
    p_f.add_argument("--quarantine", action="store_true",
                     help="local store: move damaged content files aside so the right bytes can be put back")
    p_r = sub.add_parser("repair", help="local store: put back the lost content of PATH from FILE (same sha256)")
    p_r.add_argument("path")
    p_r.add_argument("file")
    p_r.add_argument("--ref", default="main")
    args = parser.parse_args(argv)

    store, repo = open_from_env()
    if args.cmd == "log":
        for c in store.log(repo, args.ref, limit=args.n):
            meta = " ".join(f"{k}={v}" for k, v in sorted(c.metadata.items()) if k in ("batch_id", "accepted", "rejected", "run_id"))
            print(f"{c.id[:12]}  {c.message}  {meta}")
    elif args.cmd == "ls":
        for obj in store.list_objects(repo, args.ref, args.prefix):
            print(f"{obj.size_bytes:>10}  {obj.checksum[:12]}  {obj.path}")
    elif args.cmd == "branches":
        for name, head in sorted(store.list_branches(repo).items()):
            print(f"{head[:12]}  {name}")
    elif args.cmd == "fsck":
        from speech_assets.storage.fsck import check_objects

        report = check_objects(store, repo, args.ref, args.prefix)
        for d in report.damaged:
            print(f"DAMAGED {d.path}  expected sha256 {d.expected_sha256[:12]}…: {d.problem}")
            if args.quarantine and hasattr(store, "quarantine_blob"):
                moved = store.quarantine_blob(d.expected_sha256)
                print(f"        content file moved aside to {moved}" if moved else "        (no content file to move)")
        print(f"fsck {args.ref} ({report.commit[:12]}): {report.objects} objects, {report.bytes} bytes, "
              f"{len(report.damaged)} damaged")
        if hasattr(store, "remove_stale_temp_files"):  # temp files of writers killed mid-write (local store)
            removed = store.remove_stale_temp_files()
            if removed:
                print(f"removed {len(removed)} stale temp file(s) left by killed writers")
        return 0 if report.ok else 1
    elif args.cmd == "repair":
        if not hasattr(store, "repair_blob"):
            print("repair works on the local store only (lakeFS: restore the object from its storage backend)",
                  file=sys.stderr)
            return 2
        from pathlib import Path

        expected = store.stat_object(repo, args.ref, args.path).checksum
        where = store.repair_blob(Path(args.file).read_bytes(), expected)
        print(f"repaired {args.path} (sha256 {expected[:12]}…) at {where}")
    elif args.cmd == "quarantine":
        import pyarrow.parquet as pq

        from speech_assets.storage.layout import rejections_path

        table = pq.read_table(io.BytesIO(store.get_object(repo, args.ref, rejections_path(args.batch_id))))
        for row in table.to_pylist():
            print(f"#{row['index']:<5} {row['reason']:<28} {row['source_ref']}  — {row['detail']}")
    return 0


def _serving_main(argv: list[str]) -> int:
    from speech_assets.serving.routing import routing_markdown
    from speech_assets.serving.targets import local_target_from_env

    parser = argparse.ArgumentParser(prog="speech_assets serving")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="where the service runs and which models it routes to")
    sub.add_parser("stop", help="stop the local server (the routing and the models stay)")
    sub.add_parser("start", help="start the local server again with the bento and routing it had (a canary resumes)")
    args = parser.parse_args(argv)
    target = local_target_from_env()
    if args.cmd == "start":
        from speech_assets.serving.targets import NothingDeployed

        try:
            status = target.restart()
        except (NothingDeployed, RuntimeError) as exc:
            print(f"serving start: {exc}", file=sys.stderr)
            return 1
        routing = target.routing()
        print(f"ready at {status.url} (pid {status.pid}, bento {status.bento_tag}, routing revision "
              f"{status.routing_revision})")
        if routing is not None:
            print(routing_markdown(routing))
        return 0
    if args.cmd == "stop":
        target.stop()
        print("stopped")
        return 0
    status, routing = target.status(), target.routing()
    print(f"target {status.target}: {'ready' if status.ready else 'NOT ready'} at {status.url or '-'} "
          f"(pid {status.pid or '-'}, bento {status.bento_tag or '-'})")
    if routing is not None:
        print(routing_markdown(routing))
        for h in routing.history[-5:]:
            print(f"  revision {h['revision']}: {h['change']}")
    return 0 if status.ready else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        from speech_assets.demo import main as demo_main

        return demo_main(rest)
    if cmd == "stop":
        from speech_assets.demo import stop_all

        return stop_all()
    if cmd == "simulate":
        from speech_assets.simulation.cli import main as simulate_main

        return simulate_main([cmd, *rest])
    if cmd == "import-corpus":
        from speech_assets.audio.cli import main as import_main

        return import_main([cmd, *rest])
    if cmd == "store":
        return _store_main(rest)
    if cmd == "serving":
        return _serving_main(rest)
    if cmd == "models":
        from speech_assets.registry.cli import main as models_main

        return models_main(["models", *rest])
    if cmd == "audit":
        from speech_assets.governance.audit_cli import main as audit_main

        return audit_main(rest)
    if cmd in ("approve", "policy"):
        from speech_assets.governance.policy_cli import main as policy_main

        return policy_main([cmd, *rest])
    if cmd in ("erase", "retention"):
        from speech_assets.privacy.cli import main as privacy_main

        return privacy_main([cmd, *rest])
    print(f"unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2
