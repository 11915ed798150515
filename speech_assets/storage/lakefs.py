"""The production `VersionStore` adapter: a lakeFS server reached through the high-level `lakefs` SDK.

`lakefs` (PyPI) is the maintained successor of the end-of-life `lakefs-client`; it wraps the generated
`lakefs_sdk` client. Every method below uses the high-level objects (Repository, Branch, Reference, Tag,
StoredObject) where they offer the operation, and drops to `client.sdk_client.<api>` only where they do not;
each such place says why.

Semantics follow `speech_assets.storage.base.VersionStore` so this adapter and the local store pass one
contract suite. Where lakeFS and the port differ, the adapter bridges it here:

* checksums: lakeFS reports its own checksum (usually an MD5/ETag of the blockstore object). The port promises
  the sha256 of the content, so `put_object` stores it as user metadata `sha256` and reads report it back
  (the key is hidden from `ObjectStat.metadata`, which shows only what the caller stored).
* user metadata is sent as HTTP headers, so `put_object` accepts only lower-case token keys and printable
  ASCII values (ValueError otherwise) instead of letting lakeFS lower-case or the transport mangle them.
* `diff` is two-dot (left tree -> right tree); lakeFS defaults to three-dot, so it is asked for explicitly.
* a merge whose source is already contained in the destination answers 400 "no changes" on lakeFS; the port
  returns the destination head instead.
* lakeFS's merge/revert 409 does not name the clashing paths; the adapter works them out from diffs so that
  `ConflictError.paths` is filled as with the local store.
* lakeFS deletes missing objects without complaint; the port raises NotFoundError, so the adapter asks first.
* lakeFS records the authenticated user as committer; `commit(committer=...)` cannot be honoured.
* errors: the SDK's exceptions become the port's (`_translate_errors`).
"""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import contextmanager
from typing import Iterator

import lakefs
import lakefs_sdk
from lakefs.exceptions import (
    BadRequestException,
    ConflictException,
    LakeFSException,
    NotFoundException,
    ServerException,
    api_exception_handler,
)
from lakefs.reference import generate_listing

from .base import (
    DEFAULT_BRANCH,
    AlreadyExistsError,
    Change,
    Commit,
    ConflictError,
    DirtyBranchError,
    NotFoundError,
    NothingToCommitError,
    ObjectStat,
    StoreError,
    validate_path,
)

# User-metadata key under which put_object records the sha256 of the content (see module docstring).
SHA256_METADATA_KEY = "sha256"

# RepositoryCreation.name in lakeFS's OpenAPI spec; checked here so a bad name is a ValueError, as in the
# local store, rather than a server-side validation failure.
_REPO_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")

# User metadata travels as `X-Lakefs-Meta-<key>: <value>` HTTP headers on upload: lakeFS lower-cases the keys
# and http.client refuses values outside latin-1 or with line breaks (and Go would mangle non-UTF-8 bytes).
# Rather than store something else than asked, only what survives the trip unchanged is accepted.
_META_KEY_RE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_META_VALUE_RE = re.compile(r"[\x20-\x7e\t]*")

_ENV_ENDPOINT = "LAKEFS_ENDPOINT"
_ENV_ACCESS_KEY_ID = "LAKEFS_ACCESS_KEY_ID"
_ENV_SECRET_ACCESS_KEY = "LAKEFS_SECRET_ACCESS_KEY"

# lakeFS answers 400 with these messages (graveler.ErrNoChanges / graveler.ErrDirtyBranch); the status alone
# cannot tell them from any other bad request, so the message decides.
_NO_CHANGES = "no changes"
_DIRTY_BRANCH = "dirty branch"


def _message(exc: LakeFSException) -> str:
    """The server's error message (lakeFS answers `{"message": ...}`), else the exception's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc)


@contextmanager
def _translate_errors(what: str, conflict: type[StoreError] = AlreadyExistsError) -> Iterator[None]:
    """Turn SDK exceptions into the port's errors.

    `conflict` is what a 409 means for this call: "already exists" when creating, a merge/revert conflict
    otherwise. The inner `api_exception_handler` converts raw `lakefs_sdk.ApiException`s too, because some
    high-level calls (e.g. `Branch.reset_changes`) and every direct `sdk_client` call let those escape.
    """
    try:
        with api_exception_handler():
            yield
    except NotFoundException as exc:
        raise NotFoundError(f"{what}: {_message(exc)}") from exc
    except ConflictException as exc:
        if conflict is ConflictError:
            # lakeFS's 409 does not name the clashing paths; merge()/revert() work them out afterwards.
            raise ConflictError(f"{what}: {_message(exc)}", paths=[]) from exc
        raise conflict(f"{what}: {_message(exc)}") from exc
    except BadRequestException as exc:
        text = _message(exc)
        if _DIRTY_BRANCH in text.lower():
            raise DirtyBranchError(f"{what}: {text}") from exc
        if _NO_CHANGES in text.lower():
            raise NothingToCommitError(f"{what}: {text}") from exc
        raise StoreError(f"{what}: HTTP 400: {text}") from exc
    except ServerException as exc:  # 401/403/5xx and anything else the port has no name for
        raise StoreError(f"{what}: HTTP {exc.status_code}: {_message(exc)}") from exc


def _upload_metadata(metadata: dict[str, str] | None, sha256: str) -> dict[str, str]:
    """The caller's metadata plus the content digest, checked to survive the trip through HTTP headers."""
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not _META_KEY_RE.fullmatch(key):
            raise ValueError(f"object metadata key {key!r}: lakeFS keys must be lower-case HTTP header tokens")
        if not isinstance(value, str) or not _META_VALUE_RE.fullmatch(value) or value != value.strip(" \t"):
            raise ValueError(
                f"object metadata value for {key!r} must be printable ASCII without surrounding blanks "
                "(it is sent as an HTTP header)"
            )
    if SHA256_METADATA_KEY in metadata:
        raise ValueError(f"object metadata key {SHA256_METADATA_KEY!r} is reserved for the content digest")
    return {**metadata, SHA256_METADATA_KEY: sha256}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _object_stat(info: lakefs.ObjectInfo) -> ObjectStat:
    """Port view of a lakeFS object: checksum is the sha256 put_object recorded, when there is one."""
    metadata = dict(info.metadata or {})
    checksum = metadata.pop(SHA256_METADATA_KEY, None) or info.checksum
    return ObjectStat(
        path=info.path,
        checksum=checksum,
        size_bytes=int(info.size_bytes or 0),
        content_type=info.content_type or "application/octet-stream",
        metadata=metadata,
    )


def _commit(c: lakefs.Commit) -> Commit:
    return Commit(
        id=c.id,
        parents=tuple(c.parents or ()),
        message=c.message,
        committer=c.committer,
        creation_date=float(c.creation_date),
        metadata=dict(c.metadata or {}),
    )


_CHANGE_TYPES = {"added", "removed", "changed"}


def _changes(diffs: Iterator[lakefs.Change]) -> list[Change]:
    # Without a delimiter lakeFS lists objects only; "conflict"/"prefix_changed" cannot occur in a plain
    # diff, and the port has no words for them, so anything else is skipped rather than misreported.
    out = [
        Change(path=d.path, type=d.type, size_bytes=d.size_bytes)
        for d in diffs
        if d.path_type == "object" and d.type in _CHANGE_TYPES
    ]
    return sorted(out, key=lambda ch: ch.path)


class LakeFSVersionStore:
    """`VersionStore` on a lakeFS server (selected when LAKEFS_ENDPOINT is set)."""

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        storage_namespace_root: str = "local://speech-assets",
    ):
        self._endpoint = endpoint
        self._namespace_root = storage_namespace_root.rstrip("/")
        # The SDK appends /api/v1 when the endpoint has no path. The secret lives only inside the client's
        # configuration; this object never stores, logs or prints it.
        self._client = lakefs.Client(host=endpoint, username=access_key_id, password=secret_access_key)

    @classmethod
    def from_env(cls) -> "LakeFSVersionStore":
        """Build from LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and LAKEFS_SECRET_ACCESS_KEY."""
        missing = [v for v in (_ENV_ENDPOINT, _ENV_ACCESS_KEY_ID, _ENV_SECRET_ACCESS_KEY) if not os.environ.get(v)]
        if missing:
            raise StoreError(f"lakeFS store needs environment variables: {', '.join(missing)}")
        return cls(
            os.environ[_ENV_ENDPOINT],
            os.environ[_ENV_ACCESS_KEY_ID],
            os.environ[_ENV_SECRET_ACCESS_KEY],
        )

    def __repr__(self) -> str:
        # Only the endpoint: credentials must never reach logs, tracebacks or the Dagster UI.
        return f"LakeFSVersionStore(endpoint={self._endpoint!r})"

    __str__ = __repr__

    @property
    def endpoint(self) -> str:
        return self._endpoint

    # -- helpers ----------------------------------------------------------------------------------
    def _repo(self, repo: str) -> lakefs.Repository:
        return lakefs.Repository(repo, client=self._client)

    @property
    def _sdk(self):
        return self._client.sdk_client

    # -- repositories -----------------------------------------------------------------------------
    def create_repository(self, repo: str, default_branch: str = DEFAULT_BRANCH, exist_ok: bool = True) -> None:
        if not _REPO_NAME_RE.fullmatch(repo):
            raise ValueError(f"invalid repository name: {repo!r} (lakeFS: [a-z0-9][a-z0-9-]{{2,62}})")
        with _translate_errors(f"create repository {repo!r}"):
            self._repo(repo).create(
                storage_namespace=f"{self._namespace_root}/{repo}",
                default_branch=default_branch,
                exist_ok=exist_ok,
            )

    def repository_exists(self, repo: str) -> bool:
        try:
            with _translate_errors(f"get repository {repo!r}"):
                self._repo(repo).properties  # GET /repositories/{repo}
        except NotFoundError:
            return False
        return True

    # -- branches and refs ------------------------------------------------------------------------
    def create_branch(self, repo: str, branch: str, source_ref: str, exist_ok: bool = False) -> str:
        with _translate_errors(f"create branch {repo}/{branch} from {source_ref!r}"):
            b = self._repo(repo).branch(branch).create(source_ref, exist_ok=exist_ok)
            # createBranch answers only text; the head is read back to return the commit id.
            return b.head.id

    def delete_branch(self, repo: str, branch: str) -> None:
        with _translate_errors(f"delete branch {repo}/{branch}"):
            self._repo(repo).branch(branch).delete()

    def reset_branch(self, repo: str, branch: str) -> None:
        with _translate_errors(f"reset branch {repo}/{branch}"):
            self._repo(repo).branch(branch).reset_changes("reset")

    def list_branches(self, repo: str) -> dict[str, str]:
        # High-level `Repository.branches()` yields Branch objects without their head, which would cost a
        # request per branch; the listing itself already carries commit ids, so read it directly.
        with _translate_errors(f"list branches of {repo!r}"):
            return {r.id: r.commit_id for r in generate_listing(self._sdk.branches_api.list_branches, repo)}

    def resolve(self, repo: str, ref: str) -> str:
        with _translate_errors(f"resolve {repo}@{ref}"):
            return self._repo(repo).ref(ref).get_commit().id

    # -- objects ----------------------------------------------------------------------------------
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
        data = bytes(data)
        user_metadata = _upload_metadata(metadata, _sha256(data))
        obj = self._repo(repo).branch(branch).object(path)
        with _translate_errors(f"put {repo}/{branch}/{path}"):
            # pre_sign=False: upload through the lakeFS API. Leaving it None makes the SDK ask the server
            # for its storage config and, on S3/GCS/Azure, PUT straight to the blockstore instead.
            obj.upload(data, mode="wb", pre_sign=False, content_type=content_type, metadata=user_metadata)
            # upload() returns the object, not the stats the server answered with; stat it.
            return _object_stat(obj.stat())

    def get_object(self, repo: str, ref: str, path: str) -> bytes:
        validate_path(path)
        with _translate_errors(f"get {repo}@{ref}/{path}"):
            with self._repo(repo).ref(ref).object(path).reader(mode="rb", pre_sign=False) as reader:
                return bytes(reader.read())

    def get_objects(self, repo: str, ref: str, paths: list[str]) -> Iterator[bytes]:
        """Many objects at one ref (lakeFS has no batch read: one request each)."""
        for path in paths:
            yield self.get_object(repo, ref, path)

    def stat_object(self, repo: str, ref: str, path: str) -> ObjectStat:
        validate_path(path)
        with _translate_errors(f"stat {repo}@{ref}/{path}"):
            return _object_stat(self._repo(repo).ref(ref).object(path).stat())

    def delete_object(self, repo: str, branch: str, path: str) -> None:
        validate_path(path)
        what = f"delete {repo}/{branch}/{path}"
        obj = self._repo(repo).branch(branch).object(path)
        with _translate_errors(what):
            # lakeFS deletes idempotently (a missing object is not an error); the port reports it, so ask
            # first. A concurrent delete in between ends the same way: the object is gone.
            if not obj.exists():
                raise NotFoundError(f"{what}: object not found (or the branch/repository does not exist)")
            obj.delete()

    def list_objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectStat]:
        # No delimiter: lakeFS lists every object under the prefix, in path order, one page at a time;
        # `Reference.objects` follows `pagination.next_offset` until `has_more` is false.
        with _translate_errors(f"list {repo}@{ref}/{prefix}"):
            for item in self._repo(repo).ref(ref).objects(prefix=prefix or None):
                if isinstance(item, lakefs.ObjectInfo):
                    yield _object_stat(item)

    # -- history ----------------------------------------------------------------------------------
    def commit(
        self,
        repo: str,
        branch: str,
        message: str,
        metadata: dict[str, str] | None = None,
        committer: str = "speech_assets",
        allow_empty: bool = False,
    ) -> str:
        # lakeFS records the authenticated user as committer; the API has no field for `committer`.
        del committer
        with _translate_errors(f"commit {repo}/{branch}"):
            ref = self._repo(repo).branch(branch).commit(message, metadata=metadata or {}, allow_empty=allow_empty)
            return ref.id

    def get_commit(self, repo: str, ref: str) -> Commit:
        with _translate_errors(f"get commit {repo}@{ref}"):
            return _commit(self._repo(repo).ref(ref).get_commit())

    def log(self, repo: str, ref: str, limit: int | None = None) -> list[Commit]:
        if limit is not None and limit <= 0:
            # The SDK's listing helper only stops *after* yielding, so max_amount=0 would still return one.
            return []
        with _translate_errors(f"log {repo}@{ref}"):
            return [_commit(c) for c in self._repo(repo).ref(ref).log(max_amount=limit)]

    def diff(self, repo: str, left_ref: str, right_ref: str, prefix: str = "") -> list[Change]:
        with _translate_errors(f"diff {repo}@{left_ref}..{right_ref}"):
            # two_dot: compare the two trees as they are. lakeFS's default, three_dot, diffs from the merge
            # base and would hide changes made on the left side.
            return _changes(self._repo(repo).ref(left_ref).diff(right_ref, prefix=prefix or None, type="two_dot"))

    def uncommitted(self, repo: str, branch: str) -> list[Change]:
        with _translate_errors(f"uncommitted changes of {repo}/{branch}"):
            return _changes(self._repo(repo).branch(branch).uncommitted())

    def merge(
        self,
        repo: str,
        source_ref: str,
        destination_branch: str,
        message: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        what = f"merge {repo}@{source_ref} into {destination_branch}"
        try:
            with _translate_errors(what, conflict=ConflictError):
                return self._repo(repo).ref(source_ref).merge_into(
                    destination_branch, message=message, metadata=metadata or None
                )
        except NothingToCommitError:
            # lakeFS refuses a merge that changes nothing (source already contained in the destination);
            # the port treats it as done and returns where the destination stands.
            return self.resolve(repo, destination_branch)
        except ConflictError as exc:
            raise ConflictError(str(exc), self._merge_conflicts(repo, source_ref, destination_branch)) from exc

    def _merge_conflicts(self, repo: str, source_ref: str, destination_branch: str) -> list[str]:
        """Which paths clashed: lakeFS's 409 does not say, so work it out from the merge base."""
        try:
            # The high-level API has no merge-base call; the generated client does (findMergeBase).
            with _translate_errors(f"merge base of {source_ref} and {destination_branch}"):
                base = self._sdk.refs_api.find_merge_base(repo, source_ref, destination_branch)
            return self._clashing_paths(repo, base.base_commit_id, base.source_commit_id, base.destination_commit_id)
        except StoreError:
            return []  # best effort: never let the explanation hide the conflict itself

    def _clashing_paths(self, repo: str, base: str, theirs: str, ours: str) -> list[str]:
        """Paths changed on both sides since `base` that do not end up the same (three-way conflicts)."""
        theirs_changed = {c.path for c in self.diff(repo, base, theirs)}
        both = theirs_changed.intersection(c.path for c in self.diff(repo, base, ours))
        if not both:
            return []
        return sorted(both.intersection(c.path for c in self.diff(repo, theirs, ours)))

    def create_tag(self, repo: str, tag: str, ref: str, exist_ok: bool = False) -> str:
        with _translate_errors(f"create tag {repo}/{tag} at {ref!r}"):
            t = self._repo(repo).tag(tag)
            try:
                t.create(ref)
            except ConflictException:
                if not exist_ok:
                    raise
                # Tags are immutable: an existing tag is fine only if it already names that commit.
                target = self._repo(repo).ref(ref).get_commit().id
                current = t.get_commit().id
                if current != target:
                    raise AlreadyExistsError(
                        f"tag {repo}/{tag} exists at {current}, not at {target}"
                    ) from None
                return current
            return t.get_commit().id

    def list_tags(self, repo: str) -> dict[str, str]:
        # As with branches: the high-level `Repository.tags()` drops the commit ids the listing carries.
        with _translate_errors(f"list tags of {repo!r}"):
            return {r.id: r.commit_id for r in generate_listing(self._sdk.tags_api.list_tags, repo)}

    def revert(self, repo: str, branch: str, ref: str, parent_number: int = 1, message: str | None = None) -> str:
        b = self._repo(repo).branch(branch)
        try:
            with _translate_errors(f"revert {repo}@{ref} on {branch}", conflict=ConflictError):
                if message is None:
                    return b.revert(ref, parent_number=parent_number).id
                # `Branch.revert` cannot override the commit message (its kwargs go to the HTTP call, not to
                # RevertCreation), so this case builds the request itself.
                self._sdk.branches_api.revert_branch(
                    repo,
                    branch,
                    lakefs_sdk.RevertCreation(
                        ref=ref,
                        parent_number=parent_number,
                        commit_overrides=lakefs_sdk.CommitOverrides(message=message),
                    ),
                )
                return b.get_commit().id
        except ConflictError as exc:
            raise ConflictError(str(exc), self._revert_conflicts(repo, branch, ref, parent_number)) from exc

    def _revert_conflicts(self, repo: str, branch: str, ref: str, parent_number: int) -> list[str]:
        """lakeFS reverts by merging the parent into the branch with `ref` as the base; clashes as in a merge."""
        try:
            reverted = self.get_commit(repo, ref)
            parent = reverted.parents[parent_number - 1]
            return self._clashing_paths(repo, reverted.id, parent, self.resolve(repo, branch))
        except (StoreError, IndexError):
            return []
