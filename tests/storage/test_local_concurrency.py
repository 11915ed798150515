"""The local store under concurrent use from several OS processes (and threads), plus its local-only extras.

Workers run in processes started with the "spawn" context, each opening its own LocalVersionStore on the same
root, and report back through a queue; the parent then checks the resulting history end to end.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import pickle
import sqlite3
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from speech_assets.storage.base import (
    DEFAULT_BRANCH,
    ConcurrentUpdateError,
    NotFoundError,
    NothingToCommitError,
)
from speech_assets.storage.local import LocalVersionStore

MAIN = DEFAULT_BRANCH
REPO = "concurrent"
TIMEOUT_S = 120


def payload(worker: int, *parts: int) -> bytes:
    return f"worker {worker} {' '.join(map(str, parts))}".encode()


def _retry(operation, attempts: int = 50):
    """Retry only on the documented ConcurrentUpdateError."""
    for attempt in range(attempts):
        try:
            return operation()
        except ConcurrentUpdateError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


# -- workers (module level so that "spawn" children can import them) -----------------------------------
def _branch_and_merge_worker(root: str, worker: int, rounds: int, per_round: int, barrier, results) -> None:
    try:
        store = LocalVersionStore(root)
        branch = f"w{worker}"
        _retry(lambda: store.create_branch(REPO, branch, MAIN))
        barrier.wait(timeout=TIMEOUT_S)
        for r in range(rounds):
            for j in range(per_round):
                store.put_object(REPO, branch, f"{branch}/r{r}/o{j}", payload(worker, r, j))
            store.commit(REPO, branch, f"{branch} round {r}", metadata={"worker": str(worker)})
            _retry(lambda: store.merge(REPO, branch, MAIN, message=f"merge {branch} round {r}"))
            # pull main back so later rounds merge across each other's merges (criss-cross histories)
            _retry(lambda: store.merge(REPO, MAIN, branch))
            assert len(list(store.list_objects(REPO, MAIN))) >= (r + 1) * per_round
        results.put((worker, None))
    except BaseException:
        results.put((worker, traceback.format_exc()))


def _same_branch_worker(root: str, worker: int, count: int, commit_every: int, barrier, results) -> None:
    try:
        store = LocalVersionStore(root)
        barrier.wait(timeout=TIMEOUT_S)
        empty = 0
        for j in range(count):
            store.put_object(REPO, MAIN, f"p{worker}/o{j:03d}", payload(worker, j))
            if j % commit_every == commit_every - 1 or j == count - 1:
                try:
                    store.commit(REPO, MAIN, f"p{worker} after {j}")
                except NothingToCommitError:  # another process committed our staged objects already
                    empty += 1
        results.put((worker, None))
    except BaseException:
        results.put((worker, traceback.format_exc()))


def _open_fresh_root_worker(root: str, worker: int, count: int, barrier, results) -> None:
    try:
        barrier.wait(timeout=TIMEOUT_S)
        store = LocalVersionStore(root)  # all processes create the schema at once
        store.create_repository(REPO, exist_ok=True)
        branch = f"w{worker}"
        _retry(lambda: store.create_branch(REPO, branch, MAIN))
        for j in range(count):
            store.put_object(REPO, branch, f"{branch}/o{j}", payload(worker, j))
        store.commit(REPO, branch, f"{branch} objects")
        results.put((worker, None))
    except BaseException:
        results.put((worker, traceback.format_exc()))


def _run_processes(target, root: Path, workers: int, *args) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    processes = [ctx.Process(target=target, args=(str(root), w, *args, barrier, results)) for w in range(workers)]
    for p in processes:
        p.start()
    try:
        reports = dict(results.get(timeout=TIMEOUT_S) for _ in processes)
    finally:
        for p in processes:
            p.join(timeout=TIMEOUT_S)
            if p.is_alive():
                p.kill()
    failures = {w: tb for w, tb in reports.items() if tb is not None}
    assert not failures, "\n".join(f"worker {w} failed:\n{tb}" for w, tb in failures.items())
    assert all(p.exitcode == 0 for p in processes)


# -- checks ---------------------------------------------------------------------------------------------
def assert_integrity(root: Path) -> None:
    with sqlite3.connect(root / "refs.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def assert_history_consistent(store: LocalVersionStore, repo: str, ref: str) -> list:
    history = store.log(repo, ref)
    ids = [c.id for c in history]
    assert len(ids) == len(set(ids)), "log lists each commit once"
    position = {commit_id: i for i, commit_id in enumerate(ids)}
    for commit in history:
        for parent in commit.parents:
            assert store.get_commit(repo, parent).id == parent
            assert position[parent] > position[commit.id], "a parent is logged after its child"
    assert history[-1].parents == ()
    return history


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def assert_commit_ids_are_digests(root: Path, store: LocalVersionStore, repo: str) -> None:
    with sqlite3.connect(root / "refs.sqlite") as conn:
        rows = conn.execute("SELECT id, tree, body FROM commits WHERE repo = ?", (repo,)).fetchall()
    assert rows
    for commit_id, tree, body in rows:
        commit = store.get_commit(repo, commit_id)
        content = {
            "tree": tree,
            "parents": list(commit.parents),
            "message": commit.message,
            "committer": commit.committer,
            "metadata": commit.metadata,
            "creation_date": commit.creation_date,
        }
        assert canonical(content).decode() == body
        assert hashlib.sha256(canonical(content)).hexdigest() == commit_id


# -- multi-process tests --------------------------------------------------------------------------------
def test_processes_commit_on_branches_and_merge_into_main(tmp_path):
    root = tmp_path / "store"
    store = LocalVersionStore(root)
    store.create_repository(REPO)
    workers, rounds, per_round = 3, 4, 8
    _run_processes(_branch_and_merge_worker, root, workers, rounds, per_round)

    expected = {
        f"w{w}/r{r}/o{j}": payload(w, r, j) for w in range(workers) for r in range(rounds) for j in range(per_round)
    }
    listed = {s.path: s for s in store.list_objects(REPO, MAIN)}
    assert set(listed) == set(expected)
    for path, data in expected.items():
        assert listed[path].checksum == hashlib.sha256(data).hexdigest()
        assert store.get_object(REPO, MAIN, path) == data

    history = assert_history_consistent(store, REPO, MAIN)
    merges = [c for c in history if len(c.parents) == 2]
    assert len(merges) >= workers * rounds, "every round produced a merge into main"
    assert store.uncommitted(REPO, MAIN) == []
    assert_commit_ids_are_digests(root, store, REPO)
    assert_integrity(root)


def test_processes_committing_to_the_same_branch_lose_nothing(tmp_path):
    root = tmp_path / "store"
    store = LocalVersionStore(root)
    store.create_repository(REPO)
    workers, count = 3, 40
    _run_processes(_same_branch_worker, root, workers, count, 5)

    # every process's last act was a commit attempt after its last put, so nothing can be left staged
    assert store.uncommitted(REPO, MAIN) == []
    expected = {f"p{w}/o{j:03d}": payload(w, j) for w in range(workers) for j in range(count)}
    assert {s.path for s in store.list_objects(REPO, MAIN)} == set(expected)

    history = assert_history_consistent(store, REPO, MAIN)
    added_in: dict[str, list[str]] = {}
    for commit in history[:-1]:  # all but the initial commit, which has no parent
        (parent,) = commit.parents
        for change in store.diff(REPO, parent, commit.id):
            assert change.type == "added", change
            added_in.setdefault(change.path, []).append(commit.id)
    assert set(added_in) == set(expected)
    assert all(len(commits) == 1 for commits in added_in.values()), "each object lands in exactly one commit"
    assert_commit_ids_are_digests(root, store, REPO)
    assert_integrity(root)


def test_processes_opening_a_fresh_root_at_once(tmp_path):
    root = tmp_path / "fresh"
    workers = 4
    _run_processes(_open_fresh_root_worker, root, workers, 5)
    store = LocalVersionStore(root)
    assert store.list_branches(REPO).keys() == {MAIN} | {f"w{w}" for w in range(workers)}
    for w in range(workers):
        assert [s.path for s in store.list_objects(REPO, f"w{w}")] == [f"w{w}/o{j}" for j in range(5)]
        assert_history_consistent(store, REPO, f"w{w}")
    assert len(store.log(REPO, MAIN)) == 1, "the repository was created once"
    assert_integrity(root)


# -- threads and local-only extras ----------------------------------------------------------------------
def test_threads_share_one_instance(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    store.create_repository(REPO)

    def work(i: int) -> None:
        branch = f"t{i}"
        store.create_branch(REPO, branch, MAIN)
        for j in range(10):
            store.put_object(REPO, branch, f"{branch}/o{j}", payload(i, j))
        store.commit(REPO, branch, branch)
        _retry(lambda: store.merge(REPO, branch, MAIN))

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(work, range(6)))
    assert len(list(store.list_objects(REPO, MAIN))) == 60
    assert_history_consistent(store, REPO, MAIN)
    assert_integrity(tmp_path / "store")


def test_object_path_points_at_the_content(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    store.create_repository(REPO)
    data = b"zero-copy bytes"
    store.put_object(REPO, MAIN, "a/x.bin", data)
    store.put_object(REPO, MAIN, "b/same.bin", data)
    path = store.object_path(REPO, MAIN, "a/x.bin")
    digest = hashlib.sha256(data).hexdigest()
    assert path == tmp_path / "store" / "objects" / digest[:2] / digest[2:]
    assert path.read_bytes() == data
    assert store.object_path(REPO, MAIN, "b/same.bin") == path, "identical content is stored once"
    commit_id = store.commit(REPO, MAIN, "c")
    assert store.object_path(REPO, commit_id, "a/x.bin") == path
    with pytest.raises(NotFoundError):
        store.object_path(REPO, MAIN, "missing")
    with pytest.raises(ValueError):
        store.object_path(REPO, MAIN, "../escape")


def test_commit_id_prefix_pickling_and_reopening(tmp_path):
    root = tmp_path / "store"
    store = LocalVersionStore(root)
    store.create_repository(REPO)
    store.put_object(REPO, MAIN, "a", b"1")
    commit_id = store.commit(REPO, MAIN, "c1")
    assert store.resolve(REPO, commit_id[:8]) == commit_id
    with pytest.raises(NotFoundError):
        store.resolve(REPO, commit_id[:7])  # too short to be taken for a commit id

    clone = pickle.loads(pickle.dumps(store))
    assert clone.root == root and clone.get_object(REPO, MAIN, "a") == b"1"
    reopened = LocalVersionStore(str(root))
    assert reopened.list_branches(REPO) == {MAIN: commit_id}
    assert_commit_ids_are_digests(root, reopened, REPO)


def test_identical_trees_are_stored_once_and_names_are_validated(tmp_path):
    root = tmp_path / "store"
    store = LocalVersionStore(root)
    store.create_repository(REPO)
    store.put_object(REPO, MAIN, "a", b"1")
    store.commit(REPO, MAIN, "c1")
    trees_before = sorted(p for p in (root / "trees").rglob("*") if p.is_file())
    store.commit(REPO, MAIN, "empty", allow_empty=True)  # same tree, new commit
    assert sorted(p for p in (root / "trees").rglob("*") if p.is_file()) == trees_before
    for bad_repo in ("Upper", "ab", "a_b", "-x-"):
        with pytest.raises(ValueError):
            store.create_repository(bad_repo)
    with pytest.raises(ValueError):
        store.create_branch(REPO, "a/b", MAIN)
    with pytest.raises(ValueError):
        store.create_tag(REPO, "bad tag", MAIN)


def test_large_commit_works(tmp_path):
    """A 50k-entry tree commits and diffs correctly (staged rows inserted directly; speed lives in bench/)."""
    root = tmp_path / "store"
    store = LocalVersionStore(root)
    store.create_repository(REPO)
    data = b"x"
    stat = store.put_object(REPO, MAIN, "seed", data)
    with sqlite3.connect(root / "refs.sqlite") as conn:
        conn.executemany(
            "INSERT INTO staging (repo, branch, path, checksum, size_bytes, content_type, metadata)"
            " VALUES (?, ?, ?, ?, 1, 'application/octet-stream', '{}')",
            ((REPO, MAIN, f"shard-{i % 97:02d}/utt-{i:06d}.wav", stat.checksum) for i in range(50_000)),
        )
    first = store.commit(REPO, MAIN, "50k")
    store.put_object(REPO, MAIN, "one-more", data)
    second = store.commit(REPO, MAIN, "50k + 1")
    assert [c.type for c in store.diff(REPO, first, second)] == ["added"]
    assert len(list(store.list_objects(REPO, MAIN, "shard-07/"))) == len(range(7, 50_000, 97))
