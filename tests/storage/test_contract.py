"""The VersionStore contract: every store implementation must pass this suite unchanged.

The `store` and `repo` fixtures (conftest.py) run each test against the local store, the lakeFS adapter on a
loopback stub server and, when configured, a real lakeFS server. Every test works in its own repository.
"""

from __future__ import annotations

import hashlib
from uuid import uuid4

import pytest

from speech_assets.storage.base import (
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
    VersionStore,
)

MAIN = DEFAULT_BRANCH


def unique_repo_name() -> str:
    """lakeFS repository names: lowercase letters, digits and hyphens, 3-63 characters."""
    return f"t-{uuid4().hex[:8]}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def paths(store: VersionStore, repo: str, ref: str, prefix: str = "") -> list[str]:
    return [s.path for s in store.list_objects(repo, ref, prefix)]


def changes(items: list[Change]) -> list[tuple[str, str]]:
    return [(c.path, c.type) for c in items]


def put_commit(store: VersionStore, repo: str, branch: str, objects: dict[str, bytes | None], message: str) -> str:
    """Stage `objects` (None deletes) on `branch` and commit them."""
    for path, data in objects.items():
        if data is None:
            store.delete_object(repo, branch, path)
        else:
            store.put_object(repo, branch, path, data)
    return store.commit(repo, branch, message)


# -- repositories ---------------------------------------------------------------------------------------
def test_store_satisfies_protocol(store):
    assert isinstance(store, VersionStore)


def test_create_repository(store):
    name = unique_repo_name()
    assert not store.repository_exists(name)
    store.create_repository(name)
    assert store.repository_exists(name)
    store.create_repository(name, exist_ok=True)  # idempotent
    with pytest.raises(AlreadyExistsError):
        store.create_repository(name, exist_ok=False)

    branches = store.list_branches(name)
    assert list(branches) == [MAIN]
    history = store.log(name, MAIN)
    assert len(history) == 1, "a new repository starts with one initial commit"
    assert history[0].parents == ()
    assert history[0].id == branches[MAIN] == store.resolve(name, MAIN)
    assert list(store.list_objects(name, MAIN)) == []


# -- objects --------------------------------------------------------------------------------------------
def test_get_objects_reads_many_in_order_at_one_ref(store, repo):
    store.put_object(repo, MAIN, "a/1", b"one")
    store.put_object(repo, MAIN, "a/2", b"two")
    first = store.commit(repo, MAIN, "two objects")
    store.put_object(repo, MAIN, "a/1", b"uno")  # staged on the branch after the commit
    assert list(store.get_objects(repo, MAIN, ["a/2", "a/1"])) == [b"two", b"uno"]
    assert list(store.get_objects(repo, first, ["a/1", "a/2"])) == [b"one", b"two"]
    with pytest.raises(NotFoundError):
        list(store.get_objects(repo, first, ["a/1", "a/missing"]))


def test_put_get_stat_round_trip(store, repo):
    data = b"RIFF....WAVEfmt \x00\x01\xff"
    stat = store.put_object(repo, MAIN, "audio/utt-1.wav", data, content_type="audio/wav", metadata={"speaker": "s1"})
    assert isinstance(stat, ObjectStat)
    assert (stat.path, stat.checksum, stat.size_bytes, stat.content_type) == (
        "audio/utt-1.wav",
        sha(data),
        len(data),
        "audio/wav",
    )
    assert store.get_object(repo, MAIN, "audio/utt-1.wav") == data

    seen = store.stat_object(repo, MAIN, "audio/utt-1.wav")
    assert (seen.path, seen.checksum, seen.size_bytes, seen.content_type) == (
        stat.path,
        stat.checksum,
        stat.size_bytes,
        stat.content_type,
    )
    assert seen.metadata.get("speaker") == "s1"

    store.commit(repo, MAIN, "add utterance")
    after = store.stat_object(repo, MAIN, "audio/utt-1.wav")
    assert (after.checksum, after.size_bytes, after.content_type) == (sha(data), len(data), "audio/wav")
    assert after.metadata.get("speaker") == "s1"

    # overwrite, and an empty object
    store.put_object(repo, MAIN, "audio/utt-1.wav", b"v2")
    store.put_object(repo, MAIN, "empty", b"")
    assert store.get_object(repo, MAIN, "audio/utt-1.wav") == b"v2"
    assert store.stat_object(repo, MAIN, "audio/utt-1.wav").checksum == sha(b"v2")
    assert store.get_object(repo, MAIN, "empty") == b""
    assert store.stat_object(repo, MAIN, "empty").size_bytes == 0


def test_staged_reads_on_branch_committed_reads_on_tag_and_commit(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"one"}, "c1")
    store.create_tag(repo, "v1", c1)
    store.put_object(repo, MAIN, "a", b"two")
    store.put_object(repo, MAIN, "new", b"staged only")

    assert store.get_object(repo, MAIN, "a") == b"two"
    assert store.get_object(repo, MAIN, "new") == b"staged only"
    for ref in (c1, "v1"):
        assert store.get_object(repo, ref, "a") == b"one"
        assert store.stat_object(repo, ref, "a").checksum == sha(b"one")
        with pytest.raises(NotFoundError):
            store.get_object(repo, ref, "new")
        assert paths(store, repo, ref) == ["a"]
    assert paths(store, repo, MAIN) == ["a", "new"]
    assert store.resolve(repo, MAIN) == c1, "staging does not move the head"


def test_branch_isolation(store, repo):
    base = put_commit(store, repo, MAIN, {"shared": b"s"}, "base")
    assert store.create_branch(repo, "feature", MAIN) == base
    store.put_object(repo, "feature", "only-feature", b"f")
    with pytest.raises(NotFoundError):
        store.get_object(repo, MAIN, "only-feature")
    store.commit(repo, "feature", "feature work")
    with pytest.raises(NotFoundError):
        store.get_object(repo, MAIN, "only-feature")
    assert paths(store, repo, MAIN) == ["shared"]
    assert store.resolve(repo, MAIN) == base

    store.merge(repo, "feature", MAIN)
    assert store.get_object(repo, MAIN, "only-feature") == b"f"


def test_create_branch_and_list_branches(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    c2 = put_commit(store, repo, MAIN, {"a": b"2"}, "c2")
    store.create_tag(repo, "first", c1)
    assert store.create_branch(repo, "from-commit", c1) == c1
    assert store.create_branch(repo, "from-tag", "first") == c1
    assert store.create_branch(repo, "from-branch", MAIN) == c2
    assert store.get_object(repo, "from-commit", "a") == b"1"
    assert store.list_branches(repo) == {MAIN: c2, "from-commit": c1, "from-tag": c1, "from-branch": c2}

    with pytest.raises(AlreadyExistsError):
        store.create_branch(repo, "from-commit", MAIN)
    assert store.create_branch(repo, "from-commit", MAIN, exist_ok=True) == c1, "exist_ok leaves the branch alone"
    with pytest.raises(NotFoundError):
        store.create_branch(repo, "orphan", "no-such-ref")
    assert "orphan" not in store.list_branches(repo)


def test_list_objects_order_and_prefix(store, repo):
    objects = {p: p.encode() for p in ["b", "a/b", "a.txt", "a/a/c", "a/c", "c/d", "ab"]}
    put_commit(store, repo, MAIN, objects, "many")
    assert paths(store, repo, MAIN) == sorted(objects)  # "a.txt" < "a/a/c" < ... < "ab" < "b" < "c/d"
    assert paths(store, repo, MAIN, "a/") == ["a/a/c", "a/b", "a/c"]
    assert paths(store, repo, MAIN, "a") == ["a.txt", "a/a/c", "a/b", "a/c", "ab"]
    assert paths(store, repo, MAIN, "zz") == []
    listed = {s.path: s for s in store.list_objects(repo, MAIN)}
    assert listed["a/c"].checksum == sha(b"a/c") and listed["a/c"].size_bytes == 3

    # a branch listing includes staged puts and deletes, in order
    store.put_object(repo, MAIN, "a/bb", b"staged")
    store.delete_object(repo, MAIN, "a/c")
    assert paths(store, repo, MAIN, "a/") == ["a/a/c", "a/b", "a/bb"]


def test_delete_object_then_commit(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"A", "b": b"B"}, "c1")
    store.delete_object(repo, MAIN, "a")
    with pytest.raises(NotFoundError):
        store.stat_object(repo, MAIN, "a")
    assert changes(store.uncommitted(repo, MAIN)) == [("a", "removed")]
    c2 = store.commit(repo, MAIN, "drop a")
    assert c2 != c1
    assert paths(store, repo, MAIN) == ["b"]
    with pytest.raises(NotFoundError):
        store.get_object(repo, MAIN, "a")
    assert store.get_object(repo, c1, "a") == b"A", "history keeps deleted objects"
    with pytest.raises(NotFoundError):
        store.delete_object(repo, MAIN, "never-existed")


# -- commits --------------------------------------------------------------------------------------------
def test_commit_ids_and_retrieval(store, repo):
    initial = store.resolve(repo, MAIN)
    store.put_object(repo, MAIN, "x", b"1")
    c1 = store.commit(repo, MAIN, "first", metadata={"run": "r1"})
    store.put_object(repo, MAIN, "x", b"2")
    c2 = store.commit(repo, MAIN, "second")
    assert len({initial, c1, c2}) == 3
    assert store.resolve(repo, MAIN) == c2

    commit = store.get_commit(repo, c1)
    assert isinstance(commit, Commit)
    assert commit.id == c1
    assert commit.parents == (initial,)
    assert commit.message == "first"
    assert commit.metadata.get("run") == "r1"
    assert commit.creation_date > 0
    assert store.get_commit(repo, MAIN).id == c2
    assert store.get_commit(repo, MAIN).parents == (c1,)


def test_nothing_to_commit(store, repo):
    head = store.resolve(repo, MAIN)
    with pytest.raises(NothingToCommitError):
        store.commit(repo, MAIN, "empty")
    assert store.resolve(repo, MAIN) == head
    empty = store.commit(repo, MAIN, "explicitly empty", allow_empty=True)
    assert empty != head
    assert store.get_commit(repo, empty).parents == (head,)
    put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    with pytest.raises(NothingToCommitError):
        store.commit(repo, MAIN, "again")


# -- diffs ----------------------------------------------------------------------------------------------
def test_diff_added_removed_changed(store, repo):
    c1 = put_commit(store, repo, MAIN, {"keep": b"k", "mod": b"1", "gone": b"g", "dir/x": b"x"}, "c1")
    c2 = put_commit(store, repo, MAIN, {"mod": b"22", "gone": None, "new": b"nnn", "dir/y": b"y"}, "c2")

    forward = store.diff(repo, c1, c2)
    assert changes(forward) == [("dir/y", "added"), ("gone", "removed"), ("mod", "changed"), ("new", "added")]
    sizes = {c.path: c.size_bytes for c in forward}
    assert sizes["new"] == 3 and sizes["mod"] == 2
    assert changes(store.diff(repo, c2, c1)) == [
        ("dir/y", "removed"),
        ("gone", "added"),
        ("mod", "changed"),
        ("new", "removed"),
    ]
    assert changes(store.diff(repo, c1, c2, prefix="dir/")) == [("dir/y", "added")]
    assert store.diff(repo, c2, c2) == []

    # a diff compares committed trees: staged changes on a branch do not show
    store.put_object(repo, MAIN, "staged", b"s")
    assert store.diff(repo, c2, MAIN) == []


def test_diff_between_diverged_refs_is_two_way(store, repo):
    put_commit(store, repo, MAIN, {"a": b"1", "b": b"1"}, "base")
    store.create_branch(repo, "feature", MAIN)
    put_commit(store, repo, "feature", {"f": b"f"}, "feature")
    put_commit(store, repo, MAIN, {"a": b"2", "m": b"m"}, "main")
    # what turns feature's tree into main's: includes main's changes *and* undoing feature's
    assert changes(store.diff(repo, "feature", MAIN)) == [("a", "changed"), ("f", "removed"), ("m", "added")]


def test_uncommitted(store, repo):
    put_commit(store, repo, MAIN, {"a": b"1", "b": b"1"}, "c1")
    assert store.uncommitted(repo, MAIN) == []
    store.put_object(repo, MAIN, "x", b"new")
    store.put_object(repo, MAIN, "a", b"changed")
    store.delete_object(repo, MAIN, "b")
    pending = store.uncommitted(repo, MAIN)
    assert changes(pending) == [("a", "changed"), ("b", "removed"), ("x", "added")]
    assert {c.path: c.size_bytes for c in pending}["x"] == 3
    store.commit(repo, MAIN, "c2")
    assert store.uncommitted(repo, MAIN) == []


# -- merges ---------------------------------------------------------------------------------------------
def test_merge_when_destination_did_not_move(store, repo):
    put_commit(store, repo, MAIN, {"a": b"1"}, "base")
    store.create_branch(repo, "feature", MAIN)
    f1 = put_commit(store, repo, "feature", {"a": b"2", "b": b"new"}, "feature")

    merged = store.merge(repo, "feature", MAIN)
    assert store.resolve(repo, MAIN) == merged
    assert store.get_object(repo, MAIN, "a") == b"2"
    assert paths(store, repo, MAIN) == ["a", "b"]
    assert store.diff(repo, "feature", MAIN) == []
    assert f1 in {c.id for c in store.log(repo, MAIN)}

    # merging again changes nothing
    assert store.merge(repo, "feature", MAIN) == merged
    assert store.resolve(repo, MAIN) == merged


def test_three_way_merge_of_disjoint_edits(store, repo):
    put_commit(store, repo, MAIN, {"a": b"a0", "b": b"b0", "same": b"s0", "del": b"d"}, "base")
    store.create_branch(repo, "feature", MAIN)
    feature_head = put_commit(
        store, repo, "feature", {"a": b"a1", "f": b"feature", "same": b"s1", "del": None}, "feature edits"
    )
    main_head = put_commit(store, repo, MAIN, {"b": b"b1", "m": b"main", "same": b"s1"}, "main edits")

    merged = store.merge(repo, "feature", MAIN, message="merge feature", metadata={"why": "test"})
    assert merged not in (main_head, feature_head)
    assert store.resolve(repo, MAIN) == merged
    contents = {p: store.get_object(repo, MAIN, p) for p in paths(store, repo, MAIN)}
    assert contents == {"a": b"a1", "b": b"b1", "f": b"feature", "m": b"main", "same": b"s1"}

    commit = store.get_commit(repo, merged)
    assert commit.parents == (main_head, feature_head), "first parent is the destination"
    assert commit.message == "merge feature"
    assert commit.metadata.get("why") == "test"
    assert store.resolve(repo, "feature") == feature_head, "merge never moves the source"


def test_merge_conflict_writes_nothing(store, repo):
    put_commit(store, repo, MAIN, {"a": b"0", "ok": b"0"}, "base")
    store.create_branch(repo, "feature", MAIN)
    put_commit(store, repo, "feature", {"a": b"feature", "ok": b"feature"}, "feature")
    main_head = put_commit(store, repo, MAIN, {"a": b"main"}, "main")

    with pytest.raises(ConflictError) as info:
        store.merge(repo, "feature", MAIN)
    assert "a" in info.value.paths
    assert "ok" not in info.value.paths
    assert store.resolve(repo, MAIN) == main_head
    assert store.get_object(repo, MAIN, "a") == b"main"
    assert store.get_object(repo, MAIN, "ok") == b"0"
    assert store.uncommitted(repo, MAIN) == []


def test_merge_into_dirty_branch_is_refused(store, repo):
    put_commit(store, repo, MAIN, {"a": b"0"}, "base")
    store.create_branch(repo, "feature", MAIN)
    put_commit(store, repo, "feature", {"f": b"1"}, "feature")
    store.put_object(repo, MAIN, "dirty", b"uncommitted")
    head = store.resolve(repo, MAIN)
    with pytest.raises(DirtyBranchError):
        store.merge(repo, "feature", MAIN)
    assert store.resolve(repo, MAIN) == head
    with pytest.raises(NotFoundError):
        store.get_object(repo, MAIN, "f")


# -- tags -----------------------------------------------------------------------------------------------
def test_tags_are_immutable(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    assert store.create_tag(repo, "v1", MAIN) == c1
    c2 = put_commit(store, repo, MAIN, {"a": b"2"}, "c2")
    assert store.list_tags(repo) == {"v1": c1}
    assert store.resolve(repo, "v1") == c1
    assert store.get_object(repo, "v1", "a") == b"1"

    with pytest.raises(AlreadyExistsError):
        store.create_tag(repo, "v1", c1)
    assert store.create_tag(repo, "v1", c1, exist_ok=True) == c1
    with pytest.raises(AlreadyExistsError):
        store.create_tag(repo, "v1", c2, exist_ok=True)  # exist_ok never moves a tag
    assert store.resolve(repo, "v1") == c1
    with pytest.raises(NotFoundError):
        store.create_tag(repo, "v2", "no-such-ref")
    assert store.list_tags(repo) == {"v1": c1}


# -- revert ---------------------------------------------------------------------------------------------
def test_revert_restores_previous_content(store, repo):
    put_commit(store, repo, MAIN, {"a": b"1", "keep": b"k"}, "c1")
    c2 = put_commit(store, repo, MAIN, {"a": b"2", "b": b"added", "keep": None}, "c2")
    c3 = put_commit(store, repo, MAIN, {"other": b"o"}, "c3")

    reverted = store.revert(repo, MAIN, c2)
    assert store.resolve(repo, MAIN) == reverted
    assert store.get_commit(repo, reverted).parents == (c3,)
    assert store.get_object(repo, MAIN, "a") == b"1"
    assert store.get_object(repo, MAIN, "keep") == b"k"
    assert store.get_object(repo, MAIN, "other") == b"o", "later commits are kept"
    with pytest.raises(NotFoundError):
        store.get_object(repo, MAIN, "b")


def test_conflicting_revert_raises(store, repo):
    put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    c2 = put_commit(store, repo, MAIN, {"a": b"2"}, "c2")
    c3 = put_commit(store, repo, MAIN, {"a": b"3"}, "c3")
    with pytest.raises(ConflictError) as info:
        store.revert(repo, MAIN, c2)
    assert "a" in info.value.paths
    assert store.resolve(repo, MAIN) == c3
    assert store.get_object(repo, MAIN, "a") == b"3"

    store.put_object(repo, MAIN, "dirty", b"d")
    with pytest.raises(DirtyBranchError):
        store.revert(repo, MAIN, c3)
    assert store.resolve(repo, MAIN) == c3


def test_revert_merge_commit_against_first_parent(store, repo):
    put_commit(store, repo, MAIN, {"a": b"0"}, "base")
    store.create_branch(repo, "feature", MAIN)
    put_commit(store, repo, "feature", {"f": b"1"}, "feature")
    put_commit(store, repo, MAIN, {"m": b"1"}, "main")
    merged = store.merge(repo, "feature", MAIN)
    store.revert(repo, MAIN, merged, parent_number=1)
    assert paths(store, repo, MAIN) == ["a", "m"]


# -- history --------------------------------------------------------------------------------------------
def test_log_is_newest_first(store, repo):
    c0 = store.resolve(repo, MAIN)
    c1 = put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    c2 = put_commit(store, repo, MAIN, {"a": b"2"}, "c2")
    c3 = put_commit(store, repo, MAIN, {"a": b"3"}, "c3")
    history = store.log(repo, MAIN)
    assert [c.id for c in history] == [c3, c2, c1, c0]
    assert [c.message for c in history[:3]] == ["c3", "c2", "c1"]
    assert [c.parents for c in history] == [(c2,), (c1,), (c0,), ()]
    assert [c.id for c in store.log(repo, MAIN, limit=2)] == [c3, c2]
    assert [c.id for c in store.log(repo, c2)] == [c2, c1, c0]


def test_log_through_a_merge(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    store.create_branch(repo, "feature", MAIN)
    f1 = put_commit(store, repo, "feature", {"f": b"1"}, "f1")
    m1 = put_commit(store, repo, MAIN, {"m": b"1"}, "m1")
    merged = store.merge(repo, "feature", MAIN)

    history = store.log(repo, MAIN)
    ids = [c.id for c in history]
    assert ids[0] == merged
    assert history[0].parents == (m1, f1)
    assert len(ids) == len(set(ids)) == 5, "every commit once: merge, m1, f1, c1, initial"
    assert {c1, f1, m1} <= set(ids)
    assert all(parent in ids for commit in history for parent in commit.parents)
    assert ids.index(c1) > ids.index(m1) and ids.index(c1) > ids.index(f1)


def test_resolve_branch_tag_and_commit(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"1"}, "c1")
    store.create_tag(repo, "release", c1)
    c2 = put_commit(store, repo, MAIN, {"a": b"2"}, "c2")
    assert store.resolve(repo, MAIN) == c2
    assert store.resolve(repo, "release") == c1
    assert store.resolve(repo, c1) == c1
    assert store.get_commit(repo, "release").id == c1
    assert store.get_object(repo, c1, "a") == b"1"


# -- errors ---------------------------------------------------------------------------------------------
def test_not_found_errors_name_what_is_missing(store, repo):
    missing_repo = unique_repo_name()
    with pytest.raises(NotFoundError, match=missing_repo):
        store.get_object(missing_repo, MAIN, "a")
    with pytest.raises(NotFoundError):
        store.list_branches(missing_repo)
    with pytest.raises(NotFoundError, match="no-such-ref"):
        store.resolve(repo, "no-such-ref")
    with pytest.raises(NotFoundError):
        store.get_commit(repo, "0" * 64)
    with pytest.raises(NotFoundError, match="missing/object"):
        store.get_object(repo, MAIN, "missing/object")
    with pytest.raises(NotFoundError):
        store.stat_object(repo, MAIN, "missing/object")
    with pytest.raises(NotFoundError):
        store.get_object(repo, "no-such-ref", "a")
    with pytest.raises(NotFoundError):
        list(store.list_objects(repo, "no-such-ref"))
    with pytest.raises(NotFoundError):
        store.log(repo, "no-such-ref")
    with pytest.raises(NotFoundError):
        store.put_object(repo, "no-such-branch", "a", b"x")
    with pytest.raises(NotFoundError):
        store.commit(repo, "no-such-branch", "msg")
    with pytest.raises(NotFoundError):
        store.delete_branch(repo, "no-such-branch")
    with pytest.raises(NotFoundError):
        store.merge(repo, "no-such-ref", MAIN)
    with pytest.raises(NotFoundError):
        store.diff(repo, MAIN, "no-such-ref")
    assert issubclass(NotFoundError, StoreError)


@pytest.mark.parametrize("bad", ["", "/abs", "a//b", "../x", "a/../b", "a/./b", "a\\b", "a/", "."])
def test_invalid_paths_are_rejected(store, repo, bad):
    with pytest.raises(ValueError):
        store.put_object(repo, MAIN, bad, b"x")
    with pytest.raises(ValueError):
        store.get_object(repo, MAIN, bad)
    assert store.uncommitted(repo, MAIN) == []


def test_delete_branch(store, repo):
    with pytest.raises(StoreError) as info:
        store.delete_branch(repo, MAIN)
    assert not isinstance(info.value, NotFoundError)
    assert MAIN in store.list_branches(repo)

    store.create_branch(repo, "scratch", MAIN)
    store.put_object(repo, "scratch", "x", b"1")
    store.delete_branch(repo, "scratch")
    assert "scratch" not in store.list_branches(repo)
    with pytest.raises(NotFoundError):
        store.get_object(repo, "scratch", "x")


def test_reset_branch_drops_staging(store, repo):
    c1 = put_commit(store, repo, MAIN, {"a": b"1", "b": b"1"}, "c1")
    store.put_object(repo, MAIN, "a", b"2")
    store.put_object(repo, MAIN, "c", b"new")
    store.delete_object(repo, MAIN, "b")
    store.reset_branch(repo, MAIN)
    assert store.uncommitted(repo, MAIN) == []
    assert store.resolve(repo, MAIN) == c1
    assert store.get_object(repo, MAIN, "a") == b"1"
    assert store.get_object(repo, MAIN, "b") == b"1"
    assert paths(store, repo, MAIN) == ["a", "b"]
    with pytest.raises(NothingToCommitError):
        store.commit(repo, MAIN, "nothing left")
