"""Shared by the fault tests: child processes, signals, store integrity, and the figures each test reports."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from speech_assets.storage.audit_log import read_events
from speech_assets.storage.local import LocalVersionStore

ROOT = Path(__file__).resolve().parents[2]


def write_signal(path: Path, text: str) -> None:
    """What a child process tells its parent, written whole (the parent polls these files)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def report(tmp_path: Path, name: str, figures: dict) -> dict:
    """Print a test's figures (one `FIGURES` line, shown with -s or on failure) and keep them as JSON."""
    print(f"FIGURES {name} {json.dumps(figures, sort_keys=True, default=str)}")
    (tmp_path / f"figures-{name}.json").write_text(json.dumps(figures, sort_keys=True, indent=1, default=str))
    return figures


def spawn(module: str, *args: str, log: Path) -> subprocess.Popen:
    """`python -m module args` from the repository root, in its own process group, output to `log`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"the child ended (rc {proc.returncode}) before {what}:\n{tail}")
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL the child: no handler, no finally, no flush runs."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.returncode


def progress(signals: Path) -> int:
    try:
        return int((signals / "progress").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return 0


def result(signals: Path) -> dict:
    return json.loads((signals / "result.json").read_text())


def store_integrity(store: LocalVersionStore, repo: str, ref: str = "main") -> dict:
    """Every object at `ref` is readable and matches its checksum; every content file at its final path is whole.

    A content file is named by the sha256 of its bytes, so one that does not hash to its name was half-written in
    place. Temporary files of writes that were cut short are counted (they are never referred to).
    """
    objects = 0
    for stat in store.list_objects(repo, ref):
        data = store.get_object(repo, ref, stat.path)
        assert hashlib.sha256(data).hexdigest() == stat.checksum, f"{stat.path} does not match its checksum"
        assert len(data) == stat.size_bytes, stat.path
        objects += 1
    blobs, temps = 0, 0
    for sub in (store.root / "objects").iterdir():
        for f in sub.iterdir():
            if f.name.startswith(".tmp-"):
                temps += 1
                continue
            assert hashlib.sha256(f.read_bytes()).hexdigest() == sub.name + f.name, f"half-written content file {f}"
            blobs += 1
    return {"objects_on_ref": objects, "content_files_checked": blobs, "leftover_temp_files": temps}


def publish_events(store: LocalVersionStore, repo: str, batch_id: str, ref: str = "main") -> list:
    return [e for e in read_events(store, repo, ref, action="data_publish") if e.evidence.get("batch_id") == batch_id]


def batch_paths_on(store: LocalVersionStore, repo: str, ref: str, batch_id: str) -> list[str]:
    """Every object of `batch_id` at `ref`: audio, quarantine, metadata, publish marker."""
    found = []
    for prefix in (f"audio/{batch_id}/", f"quarantine/{batch_id}/", f"metadata/{batch_id}.", f"intake/published/{batch_id}."):
        found += [o.path for o in store.list_objects(repo, ref, prefix)]
    return found
