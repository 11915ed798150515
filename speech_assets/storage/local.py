"""The local store: an embedded, single-host `VersionStore` with the same semantics as the production adapter.

Layout under `root`:

    objects/ab/cdef...   object contents, named by the sha256 of the content (immutable, written atomically)
    trees/ab/cdef...     commit trees: zlib-compressed canonical JSON {path: [checksum, size, content_type,
                         metadata]}; the name is the sha256 of the *uncompressed* JSON, so identical trees are
                         stored once
    refs.sqlite          repositories, branches, staging, commits and tags (SQLite in WAL mode)

Concurrency model: every mutation is one `BEGIN IMMEDIATE` transaction, so writers from any number of
threads, `LocalVersionStore` instances and processes are serialised by SQLite's write lock (waiting up to
`BUSY_TIMEOUT_S`). Reads run in a deferred transaction, which in WAL mode is a consistent snapshot and never
blocks writers. Content files are written to a temporary file in the target directory and
`os.replace`d into place before any row refers to them; two writers producing the same content write the same
bytes, so the race is harmless. Staged content is fsync'd in one sweep by the commit that first refers to it
(a crash before that commit loses only unpublished staging). The only in-process cache holds parsed trees keyed by their content id, which
can never go stale.

Commit ids are the sha256 of the canonical JSON of the commit body (tree id, parents in recorded order, message,
committer, metadata, creation date); the body is stored next to the id so the digest can be re-checked.
A commit's creation date is always strictly later than its parents', so ordering by (date, id) is a
topological order, which `log` and the merge-base search rely on.

Refs resolve as branch, then tag, then full commit id, then a unique commit-id prefix of at least 8 hex digits.
Commit, merge and revert read the head, compute the new tree and move the head inside one write transaction, so
they never lose a concurrent update; ConcurrentUpdateError is raised only if the store stays locked longer than
`BUSY_TIMEOUT_S`, and is safe to retry.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import json
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from speech_assets.storage.base import (
    DEFAULT_BRANCH,
    AlreadyExistsError,
    Change,
    Commit,
    ConcurrentUpdateError,
    ConflictError,
    DirtyBranchError,
    NotFoundError,
    NothingToCommitError,
    ObjectStat,
    StoreError,
    validate_path,
)

__all__ = ["LocalVersionStore", "BUSY_TIMEOUT_S"]

BUSY_TIMEOUT_S = 30.0
_SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS repositories (
        name           TEXT PRIMARY KEY,
        default_branch TEXT NOT NULL,
        creation_date  REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS commits (
        repo          TEXT NOT NULL,
        id            TEXT NOT NULL,   -- sha256 hex of `body`
        tree          TEXT NOT NULL,   -- tree id (also inside `body`)
        creation_date REAL NOT NULL,   -- (also inside `body`)
        body          TEXT NOT NULL,   -- canonical JSON of the commit content
        PRIMARY KEY (repo, id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS branches (
        repo TEXT NOT NULL,
        name TEXT NOT NULL,
        head TEXT NOT NULL,
        PRIMARY KEY (repo, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS tags (
        repo      TEXT NOT NULL,
        name      TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        PRIMARY KEY (repo, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS staging (
        repo         TEXT NOT NULL,
        branch       TEXT NOT NULL,
        path         TEXT NOT NULL,
        checksum     TEXT,             -- NULL marks a tombstone: the path is deleted on this branch
        size_bytes   INTEGER,
        content_type TEXT,
        metadata     TEXT,             -- JSON object
        PRIMARY KEY (repo, branch, path)
    ) WITHOUT ROWID""",
)

# Names follow the production server's rules so that code tested locally behaves the same there.
_REPO_RE = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
_BRANCH_RE = re.compile(r"\w[-\w]*", re.ASCII)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_COMMIT_ID_RE = re.compile(r"[0-9a-f]{64}")
_COMMIT_PREFIX_RE = re.compile(r"[0-9a-f]{8,63}")

# A tree entry as stored in the tree JSON: [checksum, size_bytes, content_type, metadata].
Entry = list
Tree = dict[str, Entry]

_TREE_CACHE_MAX_ENTRIES = 400_000  # total paths across cached trees (a 50k-entry tree is ~20 MB parsed)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sha256(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _checksum(entry: Entry | None) -> str | None:
    return None if entry is None else entry[0]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes | bytearray | memoryview, durable: bool = True) -> None:
    """Write content-addressed `data` to `path` once: temp file in the same dir, (fsync,) rename.

    `durable=False` skips the fsyncs; the caller must `_sync_files` before a commit refers to the file.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _sync_files(paths: Iterable[Path]) -> None:
    """fsync many files and their directories at once.

    Staged objects are written without fsync and made durable here, just before the commit that refers to them:
    after the first fsync has flushed the journal, the rest find little left to write, so a batch of N objects
    costs far less than N synchronous writes (the per-object fsync was 70 % of intake time).
    """
    dirs = set()
    for path in set(paths):
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            dirs.add(path.parent)
    for directory in dirs:
        _fsync_dir(directory)


def _check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"object metadata must map str to str, got {key!r}: {value!r}")
    return metadata


def _check_name(kind: str, name: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(name, str) or not pattern.fullmatch(name) or ".." in name or name.endswith((".", ".lock")):
        raise ValueError(f"invalid {kind} name: {name!r}")
    return name


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@dataclass(frozen=True)
class _StoredCommit:
    commit: Commit
    tree: str


@dataclass(frozen=True)
class _TreeView:
    entries: Tree
    paths: list[str]  # sorted keys of `entries`


class LocalVersionStore:
    """The local store: content-addressed files plus refs in SQLite under one root directory.

    Safe to open from many instances, threads and processes at once. Each thread gets its own SQLite
    connection; instances pickle as just their root path.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._objects_str = str(self._objects)
        self._trees = self.root / "trees"
        self._db_path = self.root / "refs.sqlite"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._trees.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._tree_cache: OrderedDict[str, _TreeView] = OrderedDict()
        self._tree_cache_entries = 0
        self._tree_lock = threading.Lock()
        self._initialize()

    def __repr__(self) -> str:
        return f"LocalVersionStore({str(self.root)!r})"

    def __reduce__(self):
        return (type(self), (str(self.root),))

    def __enter__(self) -> LocalVersionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the calling thread's connection (others close when their thread's state is collected)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    # -- SQLite plumbing ---------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never reuse a connection across fork()
            conn = sqlite3.connect(self._db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _initialize(self) -> None:
        conn = self._connection()
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:  # switching to WAL needs a moment of exclusive access; other openers may hold the file
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() == "wal" or conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                    break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
            if time.monotonic() > deadline:
                raise ConcurrentUpdateError(f"could not switch {self._db_path} to WAL mode: database stays locked")
            time.sleep(0.01)
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise StoreError(f"{self._db_path} has schema version {version}; this code knows {_SCHEMA_VERSION}")
            if version < _SCHEMA_VERSION:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        if conn.in_transaction:
            raise RuntimeError("LocalVersionStore operations must not be nested")
        try:
            conn.execute(begin)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise ConcurrentUpdateError(
                    f"the local store at {self.root} stayed locked for {BUSY_TIMEOUT_S:.0f}s: {exc}"
                ) from exc
            raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One serialised read-modify-write transaction."""
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A consistent snapshot (WAL readers never block and are never blocked)."""
        return self._transaction("BEGIN")

    # -- files -------------------------------------------------------------------------------------
    def _blob_path(self, checksum: str) -> Path:
        return self._objects / checksum[:2] / checksum[2:]

    def _tree_path(self, tree_id: str) -> Path:
        return self._trees / tree_id[:2] / tree_id[2:]

    def _read_blob(self, repo: str, path: str, checksum: str) -> bytes:
        # plain string paths and open(): pathlib's joins cost more than the read for small audio files
        try:
            with open(f"{self._objects_str}/{checksum[:2]}/{checksum[2:]}", "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise StoreError(
                f"content {checksum} of '{path}' in repository '{repo}' is missing from {self._objects}"
            ) from None

    def _save_tree(self, entries: Tree) -> str:
        ordered = dict(sorted(entries.items()))
        raw = _canonical_json(ordered)
        tree_id = _sha256(raw)
        _write_atomic(self._tree_path(tree_id), zlib.compress(raw, 1))
        self._cache_tree(tree_id, _TreeView(ordered, list(ordered)))
        return tree_id

    def _load_tree(self, tree_id: str) -> _TreeView:
        with self._tree_lock:
            view = self._tree_cache.get(tree_id)
            if view is not None:
                self._tree_cache.move_to_end(tree_id)
                return view
        try:
            raw = zlib.decompress(self._tree_path(tree_id).read_bytes())
        except FileNotFoundError:
            raise StoreError(f"tree {tree_id} is missing from {self._trees}") from None
        entries: Tree = json.loads(raw)  # written with sorted keys, so the dict is in path order
        view = _TreeView(entries, list(entries))
        self._cache_tree(tree_id, view)
        return view

    def _cache_tree(self, tree_id: str, view: _TreeView) -> None:
        with self._tree_lock:
            if tree_id in self._tree_cache:
                return
            self._tree_cache[tree_id] = view
            self._tree_cache_entries += len(view.paths)
            while self._tree_cache_entries > _TREE_CACHE_MAX_ENTRIES and len(self._tree_cache) > 1:
                _, evicted = self._tree_cache.popitem(last=False)
                self._tree_cache_entries -= len(evicted.paths)

    # -- row helpers (all take the connection of an open transaction) ------------------------------
    def _default_branch(self, conn: sqlite3.Connection, repo: str) -> str:
        row = conn.execute("SELECT default_branch FROM repositories WHERE name = ?", (repo,)).fetchone()
        if row is None:
            raise NotFoundError(f"repository '{repo}' not found")
        return row[0]

    def _branch_head(self, conn: sqlite3.Connection, repo: str, branch: str) -> str:
        self._default_branch(conn, repo)
        row = conn.execute("SELECT head FROM branches WHERE repo = ? AND name = ?", (repo, branch)).fetchone()
        if row is None:
            raise NotFoundError(f"branch '{branch}' not found in repository '{repo}'")
        return row[0]

    def _resolve(self, conn: sqlite3.Connection, repo: str, ref: str) -> tuple[str, bool]:
        """(commit id, whether `ref` is a branch). Branches win over tags, tags over commit ids."""
        self._default_branch(conn, repo)
        row = conn.execute("SELECT head FROM branches WHERE repo = ? AND name = ?", (repo, ref)).fetchone()
        if row is not None:
            return row[0], True
        row = conn.execute("SELECT commit_id FROM tags WHERE repo = ? AND name = ?", (repo, ref)).fetchone()
        if row is not None:
            return row[0], False
        if isinstance(ref, str) and _COMMIT_ID_RE.fullmatch(ref):
            if conn.execute("SELECT 1 FROM commits WHERE repo = ? AND id = ?", (repo, ref)).fetchone():
                return ref, False
        elif isinstance(ref, str) and _COMMIT_PREFIX_RE.fullmatch(ref):
            rows = conn.execute(
                "SELECT id FROM commits WHERE repo = ? AND id >= ? AND id < ? LIMIT 2", (repo, ref, ref + "g")
            ).fetchall()
            if len(rows) == 1:
                return rows[0][0], False
            if len(rows) > 1:
                raise NotFoundError(f"commit id prefix '{ref}' is ambiguous in repository '{repo}'")
        raise NotFoundError(f"ref '{ref}' (branch, tag or commit id) not found in repository '{repo}'")

    def _stored_commit(self, conn: sqlite3.Connection, repo: str, commit_id: str) -> _StoredCommit:
        row = conn.execute("SELECT body FROM commits WHERE repo = ? AND id = ?", (repo, commit_id)).fetchone()
        if row is None:
            raise NotFoundError(f"commit '{commit_id}' not found in repository '{repo}'")
        body = json.loads(row[0])
        commit = Commit(
            id=commit_id,
            parents=tuple(body["parents"]),
            message=body["message"],
            committer=body["committer"],
            creation_date=body["creation_date"],
            metadata=body["metadata"],
        )
        return _StoredCommit(commit, body["tree"])

    def _commit_tree(self, conn: sqlite3.Connection, repo: str, commit_id: str) -> _TreeView:
        row = conn.execute("SELECT tree FROM commits WHERE repo = ? AND id = ?", (repo, commit_id)).fetchone()
        if row is None:
            raise NotFoundError(f"commit '{commit_id}' not found in repository '{repo}'")
        return self._load_tree(row[0])

    def _staged(self, conn: sqlite3.Connection, repo: str, branch: str, prefix: str = "") -> list[tuple]:
        """[(path, entry or None for a tombstone)] in path order."""
        rows = conn.execute(
            "SELECT path, checksum, size_bytes, content_type, metadata FROM staging"
            " WHERE repo = ? AND branch = ? AND path >= ? ORDER BY path",
            (repo, branch, prefix),
        )
        staged = []
        for path, checksum, size, content_type, metadata in rows:
            if not path.startswith(prefix):
                break
            staged.append((path, None if checksum is None else [checksum, size, content_type, json.loads(metadata)]))
        return staged

    def _is_dirty(self, conn: sqlite3.Connection, repo: str, branch: str) -> bool:
        row = conn.execute("SELECT 1 FROM staging WHERE repo = ? AND branch = ? LIMIT 1", (repo, branch)).fetchone()
        return row is not None

    def _new_commit(
        self,
        conn: sqlite3.Connection,
        repo: str,
        tree_id: str,
        parents: tuple[str, ...],
        message: str,
        committer: str,
        metadata: dict[str, str] | None,
    ) -> str:
        created = time.time()
        for parent in parents:  # keep dates strictly increasing along every edge, whatever the clock does
            parent_date = self._stored_commit(conn, repo, parent).commit.creation_date
            created = max(created, math.nextafter(parent_date, math.inf))
        body = {
            "tree": tree_id,
            "parents": list(parents),
            "message": message,
            "committer": committer,
            "metadata": _check_metadata(metadata),
            "creation_date": created,
        }
        raw = _canonical_json(body)
        commit_id = _sha256(raw)
        conn.execute(
            "INSERT OR IGNORE INTO commits (repo, id, tree, creation_date, body) VALUES (?, ?, ?, ?, ?)",
            (repo, commit_id, tree_id, created, raw.decode("utf-8")),
        )
        return commit_id

    def _move_branch(self, conn: sqlite3.Connection, repo: str, branch: str, old: str, new: str) -> None:
        """Compare-and-swap of a branch head (always succeeds under our write lock; guards against bugs)."""
        cursor = conn.execute(
            "UPDATE branches SET head = ? WHERE repo = ? AND name = ? AND head = ?", (new, repo, branch, old)
        )
        if cursor.rowcount != 1:
            raise ConcurrentUpdateError(f"branch '{branch}' of repository '{repo}' moved away from {old}")

    def _walk(self, conn: sqlite3.Connection, repo: str, start: str) -> Iterator[_StoredCommit]:
        """Commits reachable from `start`, newest first (date, then id), each once."""
        first = self._stored_commit(conn, repo, start)
        heap = [(-first.commit.creation_date, _desc(first.commit.id), first)]
        seen = {start}
        while heap:
            _, _, stored = heapq.heappop(heap)
            yield stored
            for parent in stored.commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    p = self._stored_commit(conn, repo, parent)
                    heapq.heappush(heap, (-p.commit.creation_date, _desc(p.commit.id), p))

    def _ancestry(self, conn: sqlite3.Connection, repo: str, start: str) -> set[str]:
        """`start` and every commit reachable from it."""
        seen = {start}
        queue = [start]
        while queue:
            commit_id = queue.pop()
            row = conn.execute("SELECT body FROM commits WHERE repo = ? AND id = ?", (repo, commit_id)).fetchone()
            for parent in json.loads(row[0])["parents"]:
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return seen

    def _merge_base(self, conn: sqlite3.Connection, repo: str, source: str, dest_ancestry: set[str]) -> str | None:
        # The newest common ancestor cannot be an ancestor of another common ancestor (dates strictly
        # increase along edges), so it is a lowest common ancestor.
        for stored in self._walk(conn, repo, source):
            if stored.commit.id in dest_ancestry:
                return stored.commit.id
        return None

    # -- repositories ------------------------------------------------------------------------------
    def create_repository(self, repo: str, default_branch: str = DEFAULT_BRANCH, exist_ok: bool = True) -> None:
        _check_name("repository", repo, _REPO_RE)
        _check_name("branch", default_branch, _BRANCH_RE)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM repositories WHERE name = ?", (repo,)).fetchone():
                if exist_ok:
                    return
                raise AlreadyExistsError(f"repository '{repo}' already exists")
            conn.execute(
                "INSERT INTO repositories (name, default_branch, creation_date) VALUES (?, ?, ?)",
                (repo, default_branch, time.time()),
            )
            tree_id = self._save_tree({})
            head = self._new_commit(conn, repo, tree_id, (), "Repository created", "speech_assets", {})
            conn.execute("INSERT INTO branches (repo, name, head) VALUES (?, ?, ?)", (repo, default_branch, head))

    def repository_exists(self, repo: str) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM repositories WHERE name = ?", (repo,)).fetchone() is not None

    # -- branches and refs -------------------------------------------------------------------------
    def create_branch(self, repo: str, branch: str, source_ref: str, exist_ok: bool = False) -> str:
        _check_name("branch", branch, _BRANCH_RE)
        with self._write() as conn:
            self._default_branch(conn, repo)
            row = conn.execute("SELECT head FROM branches WHERE repo = ? AND name = ?", (repo, branch)).fetchone()
            if row is not None:
                if exist_ok:
                    return row[0]
                raise AlreadyExistsError(f"branch '{branch}' already exists in repository '{repo}'")
            head, _ = self._resolve(conn, repo, source_ref)
            conn.execute("INSERT INTO branches (repo, name, head) VALUES (?, ?, ?)", (repo, branch, head))
            return head

    def delete_branch(self, repo: str, branch: str) -> None:
        with self._write() as conn:
            if branch == self._default_branch(conn, repo):
                raise StoreError(f"cannot delete '{branch}': it is the default branch of repository '{repo}'")
            self._branch_head(conn, repo, branch)
            conn.execute("DELETE FROM staging WHERE repo = ? AND branch = ?", (repo, branch))
            conn.execute("DELETE FROM branches WHERE repo = ? AND name = ?", (repo, branch))

    def reset_branch(self, repo: str, branch: str) -> None:
        with self._write() as conn:
            self._branch_head(conn, repo, branch)
            conn.execute("DELETE FROM staging WHERE repo = ? AND branch = ?", (repo, branch))

    def list_branches(self, repo: str) -> dict[str, str]:
        with self._read() as conn:
            self._default_branch(conn, repo)
            rows = conn.execute("SELECT name, head FROM branches WHERE repo = ? ORDER BY name", (repo,))
            return dict(rows.fetchall())

    def resolve(self, repo: str, ref: str) -> str:
        with self._read() as conn:
            return self._resolve(conn, repo, ref)[0]

    # -- objects -----------------------------------------------------------------------------------
    def put_object(
        self,
        repo: str,
        branch: str,
        path: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectStat:
        validate_path(path)
        metadata = _check_metadata(metadata)
        checksum = _sha256(data)
        size = memoryview(data).nbytes
        # Written before any row refers to it; made durable by the commit that publishes it (see _sync_files).
        _write_atomic(self._blob_path(checksum), data, durable=False)
        with self._write() as conn:
            self._branch_head(conn, repo, branch)
            conn.execute(
                "INSERT OR REPLACE INTO staging (repo, branch, path, checksum, size_bytes, content_type, metadata)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (repo, branch, path, checksum, size, content_type, json.dumps(metadata, sort_keys=True)),
            )
        return ObjectStat(path, checksum, size, content_type, metadata)

    def _lookup(self, conn: sqlite3.Connection, repo: str, ref: str, path: str) -> Entry:
        commit_id, is_branch = self._resolve(conn, repo, ref)
        if is_branch:
            staged = self._staged_entry(conn, repo, ref, path)
            if staged is not None:
                if staged[0] is None:
                    raise NotFoundError(f"object '{path}' not found at '{ref}' in repository '{repo}' (deleted)")
                return staged
        entry = self._commit_tree(conn, repo, commit_id).entries.get(path)
        if entry is None:
            raise NotFoundError(f"object '{path}' not found at '{ref}' in repository '{repo}'")
        return entry

    def _staged_entry(self, conn: sqlite3.Connection, repo: str, branch: str, path: str) -> Entry | None:
        """The staged entry for `path`, [None, ...] for a tombstone, None when nothing is staged."""
        row = conn.execute(
            "SELECT checksum, size_bytes, content_type, metadata FROM staging"
            " WHERE repo = ? AND branch = ? AND path = ?",
            (repo, branch, path),
        ).fetchone()
        if row is None:
            return None
        checksum, size, content_type, metadata = row
        return [checksum, size, content_type, None if metadata is None else json.loads(metadata)]

    def get_object(self, repo: str, ref: str, path: str) -> bytes:
        validate_path(path)
        with self._read() as conn:
            entry = self._lookup(conn, repo, ref, path)
        return self._read_blob(repo, path, entry[0])

    def get_objects(self, repo: str, ref: str, paths: list[str]) -> Iterator[bytes]:
        """Many objects at one ref: the ref is resolved once and the lookups share one read transaction
        (per-object lookups were a sixth of the features asset's CPU time)."""
        for path in paths:
            validate_path(path)
        with self._read() as conn:
            entries = [self._lookup(conn, repo, ref, path) for path in paths]
        for path, entry in zip(paths, entries):
            yield self._read_blob(repo, path, entry[0])

    # -- repair (local store only: lakeFS keeps its own object store's integrity) -----------------------------
    def quarantine_blob(self, checksum: str) -> Path | None:
        """Move the content file of `checksum` aside (to `<root>/corrupt/`), e.g. after `fsck` found it damaged.

        Content files are written once and never overwritten (`_write_atomic` skips an existing address), so a
        damaged one must be moved out of the way before the right bytes can be put back. Returns where it went
        (None if there was no file). Objects that refer to it read as "missing" until it is repaired.
        """
        src = self._blob_path(checksum)
        if not src.exists():
            return None
        dest = self.root / "corrupt" / f"{checksum}.{int(time.time() * 1000)}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return dest

    def remove_stale_temp_files(self, older_than_s: float = 3600.0) -> list[Path]:
        """Delete `.tmp-*` files a killed writer left in the content folders (nothing refers to them; a writer
        still running renames its temp file within seconds, hence the age limit). Returns what was removed."""
        cutoff = time.time() - older_than_s
        removed = []
        for folder in (self._objects, self._trees):
            for tmp in folder.glob("*/.tmp-*"):
                with contextlib.suppress(FileNotFoundError):
                    if tmp.stat().st_mtime < cutoff:
                        tmp.unlink()
                        removed.append(tmp)
        return removed

    def repair_blob(self, data: bytes, expected_checksum: str) -> Path:
        """Put back the content of `expected_checksum` from good bytes (a backup, the landing file, a rerun).

        Every commit that refers to that content is whole again at once: no new commit, no history rewrite.
        Refuses bytes whose digest differs, and refuses to overwrite a content file that is present and intact."""
        actual = _sha256(data)
        if actual != expected_checksum:
            raise StoreError(f"these bytes hash to {actual}, not {expected_checksum}: not the lost content")
        path = self._blob_path(expected_checksum)
        if path.exists():
            if _sha256(path.read_bytes()) == expected_checksum:
                return path
            self.quarantine_blob(expected_checksum)
        _write_atomic(path, data, durable=True)
        return path

    def stat_object(self, repo: str, ref: str, path: str) -> ObjectStat:
        validate_path(path)
        with self._read() as conn:
            entry = self._lookup(conn, repo, ref, path)
        return _stat(path, entry)

    def object_path(self, repo: str, ref: str, path: str) -> Path:
        """The on-disk file holding `path`'s content at `ref`, for zero-copy reads. Never write to it."""
        validate_path(path)
        with self._read() as conn:
            entry = self._lookup(conn, repo, ref, path)
        return self._blob_path(entry[0])

    def delete_object(self, repo: str, branch: str, path: str) -> None:
        validate_path(path)
        with self._write() as conn:
            head = self._branch_head(conn, repo, branch)
            staged = self._staged_entry(conn, repo, branch, path)
            committed = path in self._commit_tree(conn, repo, head).entries
            if (staged is not None and staged[0] is None) or (staged is None and not committed):
                raise NotFoundError(f"object '{path}' not found on branch '{branch}' in repository '{repo}'")
            if committed:
                conn.execute(
                    "INSERT OR REPLACE INTO staging (repo, branch, path, checksum, size_bytes, content_type, metadata)"
                    " VALUES (?, ?, ?, NULL, NULL, NULL, NULL)",
                    (repo, branch, path),
                )
            else:  # only ever staged: forget it
                conn.execute("DELETE FROM staging WHERE repo = ? AND branch = ? AND path = ?", (repo, branch, path))

    def list_objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectStat]:
        """Every object under `prefix` at `ref`, in path order. The listing is a snapshot taken at call time."""
        with self._read() as conn:
            commit_id, is_branch = self._resolve(conn, repo, ref)
            tree = self._commit_tree(conn, repo, commit_id)
            staged = self._staged(conn, repo, ref, prefix) if is_branch else []
        selected = _prefix_slice(tree, prefix)
        if staged:
            merged = {path: tree.entries[path] for path in selected}
            for path, entry in staged:
                if entry is None:
                    merged.pop(path, None)
                else:
                    merged[path] = entry
            return (_stat(path, merged[path]) for path in sorted(merged))
        return (_stat(path, tree.entries[path]) for path in selected)

    # -- history -----------------------------------------------------------------------------------
    def commit(
        self,
        repo: str,
        branch: str,
        message: str,
        metadata: dict[str, str] | None = None,
        committer: str = "speech_assets",
        allow_empty: bool = False,
    ) -> str:
        with self._write() as conn:
            head = self._branch_head(conn, repo, branch)
            staged = self._staged(conn, repo, branch)
            if not staged and not allow_empty:
                raise NothingToCommitError(f"branch '{branch}' of repository '{repo}' has no uncommitted changes")
            entries = dict(self._commit_tree(conn, repo, head).entries)
            for path, entry in staged:
                if entry is None:
                    entries.pop(path, None)
                else:
                    entries[path] = entry
            _sync_files(self._blob_path(entry[0]) for _, entry in staged if entry is not None)
            tree_id = self._save_tree(entries)
            commit_id = self._new_commit(conn, repo, tree_id, (head,), message, committer, metadata)
            self._move_branch(conn, repo, branch, head, commit_id)
            conn.execute("DELETE FROM staging WHERE repo = ? AND branch = ?", (repo, branch))
            return commit_id

    def get_commit(self, repo: str, ref: str) -> Commit:
        with self._read() as conn:
            commit_id, _ = self._resolve(conn, repo, ref)
            return self._stored_commit(conn, repo, commit_id).commit

    def log(self, repo: str, ref: str, limit: int | None = None) -> list[Commit]:
        with self._read() as conn:
            commit_id, _ = self._resolve(conn, repo, ref)
            commits = []
            for stored in self._walk(conn, repo, commit_id):
                if limit is not None and len(commits) >= limit:
                    break
                commits.append(stored.commit)
            return commits

    def diff(self, repo: str, left_ref: str, right_ref: str, prefix: str = "") -> list[Change]:
        with self._read() as conn:
            left = self._commit_tree(conn, repo, self._resolve(conn, repo, left_ref)[0])
            right = self._commit_tree(conn, repo, self._resolve(conn, repo, right_ref)[0])
        if left is right:
            return []
        changes = []
        for path in sorted(set(_prefix_slice(left, prefix)).union(_prefix_slice(right, prefix))):
            change = _change(path, left.entries.get(path), right.entries.get(path))
            if change is not None:
                changes.append(change)
        return changes

    def uncommitted(self, repo: str, branch: str) -> list[Change]:
        with self._read() as conn:
            head = self._branch_head(conn, repo, branch)
            staged = self._staged(conn, repo, branch)
            tree = self._commit_tree(conn, repo, head) if staged else None
        changes = []
        for path, entry in staged:
            change = _change(path, tree.entries.get(path), entry)
            if change is not None:
                changes.append(change)
        return changes

    def merge(
        self,
        repo: str,
        source_ref: str,
        destination_branch: str,
        message: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        with self._write() as conn:
            dest_head = self._branch_head(conn, repo, destination_branch)
            source, _ = self._resolve(conn, repo, source_ref)
            if self._is_dirty(conn, repo, destination_branch):
                raise DirtyBranchError(
                    f"cannot merge into '{destination_branch}' of repository '{repo}': it has uncommitted changes"
                )
            dest_ancestry = self._ancestry(conn, repo, dest_head)
            if source in dest_ancestry:
                return dest_head  # already contained: nothing to do
            base_id = self._merge_base(conn, repo, source, dest_ancestry)
            base = self._commit_tree(conn, repo, base_id).entries if base_id else {}
            theirs = self._commit_tree(conn, repo, source).entries
            ours = self._commit_tree(conn, repo, dest_head).entries
            merged = dict(ours)
            conflicts = []
            for path in _changed_paths(base, theirs):
                base_sum, their_sum, our_sum = (_checksum(t.get(path)) for t in (base, theirs, ours))
                if our_sum == base_sum:  # changed on the source only
                    _set(merged, path, theirs.get(path))
                elif our_sum != their_sum:  # changed differently on both sides
                    conflicts.append(path)
            if conflicts:
                raise ConflictError(
                    f"merging '{source_ref}' into '{destination_branch}' of repository '{repo}' conflicts on "
                    f"{len(conflicts)} path(s): {_preview(conflicts)}",
                    conflicts,
                )
            tree_id = self._save_tree(merged)
            commit_id = self._new_commit(
                conn,
                repo,
                tree_id,
                (dest_head, source),
                message or f"Merge '{source_ref}' into '{destination_branch}'",
                "speech_assets",
                metadata,
            )
            self._move_branch(conn, repo, destination_branch, dest_head, commit_id)
            return commit_id

    def create_tag(self, repo: str, tag: str, ref: str, exist_ok: bool = False) -> str:
        _check_name("tag", tag, _TAG_RE)
        with self._write() as conn:
            commit_id, _ = self._resolve(conn, repo, ref)
            row = conn.execute("SELECT commit_id FROM tags WHERE repo = ? AND name = ?", (repo, tag)).fetchone()
            if row is not None:
                if exist_ok and row[0] == commit_id:
                    return commit_id
                raise AlreadyExistsError(f"tag '{tag}' already exists in repository '{repo}' (at {row[0]})")
            conn.execute("INSERT INTO tags (repo, name, commit_id) VALUES (?, ?, ?)", (repo, tag, commit_id))
            return commit_id

    def list_tags(self, repo: str) -> dict[str, str]:
        with self._read() as conn:
            self._default_branch(conn, repo)
            rows = conn.execute("SELECT name, commit_id FROM tags WHERE repo = ? ORDER BY name", (repo,))
            return dict(rows.fetchall())

    def revert(self, repo: str, branch: str, ref: str, parent_number: int = 1, message: str | None = None) -> str:
        with self._write() as conn:
            head = self._branch_head(conn, repo, branch)
            if self._is_dirty(conn, repo, branch):
                raise DirtyBranchError(
                    f"cannot revert on '{branch}' of repository '{repo}': it has uncommitted changes"
                )
            target_id, _ = self._resolve(conn, repo, ref)
            target = self._stored_commit(conn, repo, target_id)
            parents = target.commit.parents
            if not parents:
                raise StoreError(f"commit {target_id} has no parent, so there is nothing to revert")
            if not 1 <= parent_number <= len(parents):
                raise StoreError(
                    f"commit {target_id} has {len(parents)} parent(s); parent_number {parent_number} is invalid"
                )
            before = self._commit_tree(conn, repo, parents[parent_number - 1]).entries
            after = self._load_tree(target.tree).entries
            current = self._commit_tree(conn, repo, head).entries
            reverted = dict(current)
            conflicts = []
            for path in _changed_paths(before, after):
                now = _checksum(current.get(path))
                if now == _checksum(after.get(path)):  # untouched since `ref`: undo it
                    _set(reverted, path, before.get(path))
                elif now != _checksum(before.get(path)):  # changed again since: refuse
                    conflicts.append(path)
            if conflicts:
                raise ConflictError(
                    f"reverting {target_id} on '{branch}' of repository '{repo}' conflicts on "
                    f"{len(conflicts)} path(s) changed since: {_preview(conflicts)}",
                    conflicts,
                )
            tree_id = self._save_tree(reverted)
            commit_id = self._new_commit(
                conn, repo, tree_id, (head,), message or f"Revert {target_id}", "speech_assets", {}
            )
            self._move_branch(conn, repo, branch, head, commit_id)
            return commit_id


def _desc(text: str) -> tuple[int, ...]:
    """Sort key that orders strings descending inside an ascending heap (ties on date: higher id first)."""
    return tuple(-ord(ch) for ch in text)


def _stat(path: str, entry: Entry) -> ObjectStat:
    checksum, size, content_type, metadata = entry
    return ObjectStat(path, checksum, size, content_type, dict(metadata))


def _prefix_slice(tree: _TreeView, prefix: str) -> list[str]:
    if not prefix:
        return tree.paths
    start = bisect.bisect_left(tree.paths, prefix)
    end = start
    while end < len(tree.paths) and tree.paths[end].startswith(prefix):
        end += 1
    return tree.paths[start:end]


def _change(path: str, before: Entry | None, after: Entry | None) -> Change | None:
    if after is None:
        return None if before is None else Change(path, "removed", before[1])
    if before is None:
        return Change(path, "added", after[1])
    if before[0] != after[0]:
        return Change(path, "changed", after[1])
    return None


def _changed_paths(before: Tree, after: Tree) -> list[str]:
    """Paths whose content differs between two trees (added, removed or changed), sorted."""
    changed = [p for p, e in after.items() if _checksum(before.get(p)) != e[0]]
    changed.extend(p for p in before if p not in after)
    return sorted(changed)


def _set(tree: Tree, path: str, entry: Entry | None) -> None:
    if entry is None:
        tree.pop(path, None)
    else:
        tree[path] = entry


def _preview(paths: Iterable[str], limit: int = 10) -> str:
    paths = list(paths)
    shown = ", ".join(paths[:limit])
    return shown + (f" ... (+{len(paths) - limit} more)" if len(paths) > limit else "")
