"""The landing zone: folders of audio that users (or the simulator) drop for intake.

A batch is one sub-folder of the landing directory. It is picked up only once it holds a `_READY` marker,
written last by whoever fills the folder, so a batch that is still being copied is never half-ingested.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

READY_MARKER = "_READY"
# lakeFS branch names allow only [\w-]; batch ids become part of branch names and object paths.
_BATCH_ID_RE = re.compile(r"[^a-z0-9_-]+")


def batch_id_for(folder_name: str) -> str:
    """Stable, path- and branch-safe id for a landing folder name (e.g. 'Day 01.CV' -> 'day-01-cv')."""
    cleaned = _BATCH_ID_RE.sub("-", folder_name.lower()).strip("-_")
    if not cleaned:
        raise ValueError(f"landing folder name {folder_name!r} has no usable characters for a batch id")
    if cleaned != folder_name:
        # Two different names must never collapse onto one id: suffix a short digest of the original.
        cleaned = f"{cleaned[:40]}-{hashlib.sha256(folder_name.encode()).hexdigest()[:6]}"
    return cleaned[:63]


@dataclass(frozen=True)
class LandingBatch:
    batch_id: str
    path: Path

    def fingerprint(self) -> str:
        """Cheap change detector (names, sizes, mtimes); the content hash is computed only when this moves."""
        h = hashlib.sha256()
        for rel, st in _walk(self.path):
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def content_hash(self) -> str:
        """Digest of every file's relative path and bytes: equal content, equal hash, wherever it lands."""
        h = hashlib.sha256()
        for rel, _ in _walk(self.path):
            if rel == READY_MARKER:
                continue
            fh = hashlib.sha256()
            with open(self.path / rel, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    fh.update(block)
            h.update(f"{rel}\0{fh.hexdigest()}\n".encode())
        return h.hexdigest()

    def size_bytes(self) -> int:
        return sum(st.st_size for _, st in _walk(self.path))


def _walk(root: Path):
    """(relative posix path, stat) of every regular file under root, sorted; symlinks are not followed."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            if not full.is_symlink():
                out.append((full.relative_to(root).as_posix(), st))
    out.sort(key=lambda item: item[0])
    return out


def scan_landing(landing_dir: str | Path) -> list[LandingBatch]:
    """Ready batches in the landing directory, by folder name."""
    root = Path(landing_dir)
    if not root.is_dir():
        return []
    batches = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.is_symlink() and (child / READY_MARKER).is_file():
            batches.append(LandingBatch(batch_id_for(child.name), child))
    return batches
