"""Check that every object at a ref still has its recorded content (`speech_assets store fsck`).

Reads re-hash nothing on the hot path (intake and training read thousands of objects), so silent damage on
disk — a bit flip, a truncated file, a content file deleted by hand — is found here, on demand or on a
schedule, not by a confusing decode error three assets downstream. Works on any `VersionStore`; the local
store can then move a damaged content file aside and take the right bytes back (`repair_blob`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from speech_assets.storage.base import DEFAULT_BRANCH, StoreError, VersionStore


@dataclass(frozen=True)
class DamagedObject:
    path: str
    expected_sha256: str
    problem: str  # "content differs (sha256 …)" or "content missing"


@dataclass
class FsckReport:
    ref: str
    commit: str
    objects: int = 0
    bytes: int = 0
    damaged: list[DamagedObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged


def check_objects(store: VersionStore, repo: str, ref: str = DEFAULT_BRANCH, prefix: str = "") -> FsckReport:
    commit = store.resolve(repo, ref)
    report = FsckReport(ref, commit)
    for stat in store.list_objects(repo, commit, prefix):
        report.objects += 1
        try:
            data = store.get_object(repo, commit, stat.path)
        except StoreError as exc:
            report.damaged.append(DamagedObject(stat.path, stat.checksum, f"content missing ({exc})"))
            continue
        report.bytes += len(data)
        actual = hashlib.sha256(data).hexdigest()
        if actual != stat.checksum:
            report.damaged.append(DamagedObject(stat.path, stat.checksum, f"content differs (sha256 {actual[:12]}…)"))
    return report
