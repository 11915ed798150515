"""The lakeFS adapter and the OpenAPI-validating stub it is tested against.

The contract suite proves the adapter behaves like the local store and, through `lakefs_stub_store`'s exit
check, that nothing it sent or got back broke lakeFS's spec. These tests prove the converse: that the stub's
validation is real (a corrupted response and a malformed request are both caught, recorded and answered 500),
plus the adapter's own duties: pagination, credentials handling and `from_env`.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from speech_assets.storage.base import NotFoundError, StoreError
from speech_assets.storage.lakefs import LakeFSVersionStore

from .lakefs_fixtures import (
    STUB_ACCESS_KEY_ID,
    STUB_SECRET_ACCESS_KEY,
    lakefs_server_store,
    lakefs_stub_server,
)
from .lakefs_stub import DEFAULT_SPEC_PATH, SPEC_ENV, LakeFSStubServer, spec_path

REPO = "stub-tests"


@pytest.fixture
def server(tmp_path: Path):
    with lakefs_stub_server(tmp_path) as server:
        yield server


@pytest.fixture
def store(server: LakeFSStubServer) -> LakeFSVersionStore:
    store = LakeFSVersionStore(server.url, STUB_ACCESS_KEY_ID, STUB_SECRET_ACCESS_KEY)
    store.create_repository(REPO)
    return store


def raw_request(server: LakeFSStubServer, method: str, path: str, body: object = None, auth: bool = True):
    """Send a request without the SDK (so it can be wrong on purpose); returns (status, body text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.url}/api/v1{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        token = base64.b64encode(f"{STUB_ACCESS_KEY_ID}:{STUB_SECRET_ACCESS_KEY}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- the stub's validation is real ------------------------------------------------------------------------
def test_response_missing_a_required_field_is_caught(server, store):
    store.put_object(REPO, "main", "a.wav", b"RIFF")
    assert server.violations == []

    # ObjectStats requires `checksum`: a server that dropped it would break every client.
    server.corrupt_responses["statObject"] = lambda body: body.pop("checksum")
    with pytest.raises(StoreError, match="500"):
        store.stat_object(REPO, "main", "a.wav")

    [violation] = server.violations
    assert (violation.kind, violation.operation) == ("response", "statObject")
    assert "checksum" in violation.message


def test_response_with_a_wrong_type_is_caught_by_path_template(server, store):
    head = store.resolve(REPO, "main")
    # Keyed by the spec's path template rather than the operationId; Commit.creation_date is an int64.
    server.corrupt_responses["/repositories/{repository}/commits/{commitId}"] = lambda body: body.update(
        creation_date="yesterday"
    )
    with pytest.raises(StoreError):
        store.get_commit(REPO, head)

    [violation] = server.violations
    assert (violation.kind, violation.operation) == ("response", "getCommit")
    assert "creation_date" in violation.message and "yesterday" in violation.message


def test_corrupted_response_is_answered_500_with_the_validation_error(server, store):
    server.corrupt_responses["getBranch"] = lambda body: body.pop("commit_id")
    status, text = raw_request(server, "GET", f"/repositories/{REPO}/branches/main")
    assert status == 500
    assert "OpenAPI response validation failed" in text and "commit_id" in text
    assert [v.operation for v in server.violations] == ["getBranch"]


def test_malformed_request_is_caught_and_never_reaches_the_backend(server, store):
    store.put_object(REPO, "main", "staged", b"x")
    head = store.resolve(REPO, "main")

    # CommitCreation requires `message`.
    status, text = raw_request(server, "POST", f"/repositories/{REPO}/branches/main/commits", {"metadata": {}})
    assert status == 500
    assert "OpenAPI request validation failed" in text and "message" in text

    [violation] = server.violations
    assert (violation.kind, violation.method, violation.operation) == ("request", "POST", "commit")
    assert "'message' is a required property" in violation.message
    # nothing was committed
    assert store.resolve(REPO, "main") == head
    assert [c.path for c in store.uncommitted(REPO, "main")] == ["staged"]


def test_request_with_a_wrong_type_is_caught(server, store):
    status, _ = raw_request(server, "POST", f"/repositories/{REPO}/tags", {"id": "v1", "ref": 42})
    assert status == 500
    [violation] = server.violations
    assert (violation.kind, violation.operation) == ("request", "createTag")
    assert store.list_tags(REPO) == {}


def test_missing_credentials_are_401_not_drift(server, store):
    status, text = raw_request(server, "GET", f"/repositories/{REPO}", auth=False)
    assert status == 401 and "authenticating" in text
    assert server.violations == []


def test_endpoints_outside_the_stub_are_501_and_listed(server, store):
    status, _ = raw_request(server, "GET", "/repositories")  # listRepositories: in the spec, not needed here
    assert status == 501
    assert server.unhandled == ["GET /api/v1/repositories"]
    assert server.violations == []


def test_what_the_sdk_asks_on_its_own_is_served(server, store):
    client = store._client  # the SDK's lazily fetched server config (GET /config)
    assert client.version
    assert client.storage_config.pre_sign_support is False
    assert server.violations == [] and server.unhandled == []


# -- adapter behaviour the contract suite cannot see ------------------------------------------------------
def test_listings_follow_pagination(tmp_path):
    with lakefs_stub_server(tmp_path, max_per_page=2) as server:  # force several pages per listing
        store = LakeFSVersionStore(server.url, STUB_ACCESS_KEY_ID, STUB_SECRET_ACCESS_KEY)
        store.create_repository(REPO)
        names = [f"obj-{i}" for i in (4, 0, 3, 1, 2)]
        commits = []
        for name in names:
            store.put_object(REPO, "main", name, name.encode())
            commits.append(store.commit(REPO, "main", name))
            store.create_branch(REPO, f"b-{name}", "main")
            store.create_tag(REPO, f"t-{name}", "main")

        assert [s.path for s in store.list_objects(REPO, "main")] == sorted(names)
        assert [c.id for c in store.log(REPO, "main")][:5] == commits[::-1]
        assert len(store.log(REPO, "main")) == 6  # plus the initial commit
        assert [c.id for c in store.log(REPO, "main", limit=3)] == commits[:-4:-1]
        assert store.log(REPO, "main", limit=0) == []
        assert len(store.list_branches(REPO)) == 6 and len(store.list_tags(REPO)) == 5
        first = store.log(REPO, "main")[-1].id
        assert [c.path for c in store.diff(REPO, first, "main")] == sorted(names)
        assert server.violations == []


def test_checksum_is_sha256_and_the_bookkeeping_key_is_hidden(server, store):
    stat = store.put_object(REPO, "main", "x", b"abc", metadata={"speaker": "s1"})
    assert stat.checksum == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert stat.metadata == {"speaker": "s1"}
    assert store.stat_object(REPO, "main", "x").metadata == {"speaker": "s1"}


@pytest.mark.parametrize("metadata", [{"Speaker": "s1"}, {"speaker": "José"}, {"note": "a\nb"}, {"sha256": "x"}])
def test_metadata_that_would_not_survive_http_headers_is_refused(server, store, metadata):
    # Sent as X-Lakefs-Meta-* headers: lakeFS lower-cases keys, http.client rejects non-latin-1 and newlines.
    with pytest.raises(ValueError):
        store.put_object(REPO, "main", "x", b"abc", metadata=metadata)
    assert store.uncommitted(REPO, "main") == []


def test_invalid_repository_name_is_a_value_error_before_any_request(server, store):
    with pytest.raises(ValueError):
        store.create_repository("Not_Valid")
    assert server.violations == []


def test_errors_map_to_the_port(server, store):
    with pytest.raises(NotFoundError, match="no-such-branch"):
        store.put_object(REPO, "no-such-branch", "a", b"x")
    with pytest.raises(NotFoundError):
        store.delete_object(REPO, "main", "never-existed")  # lakeFS itself would answer 204 here


# -- credentials ------------------------------------------------------------------------------------------
SECRET = "s3cr3t-value-that-must-not-leak"


def test_secrets_never_appear_in_repr_or_logs(tmp_path, caplog, capsys):
    with lakefs_stub_server(tmp_path, credentials={"AKIAEXAMPLEKEY": SECRET}) as server:
        url = server.url
        store = LakeFSVersionStore(url, "AKIAEXAMPLEKEY", SECRET)
        # The SDK resets its loggers' levels when a client is built; turn everything up afterwards.
        for name in ("", "urllib3", "lakefs_sdk", "lakefs", "speech_assets", "werkzeug"):
            caplog.set_level(logging.DEBUG, logger=name)

        store.create_repository(REPO)
        store.put_object(REPO, "main", "a", b"1")
        store.commit(REPO, "main", "c1")
        with pytest.raises(NotFoundError) as info:
            store.get_object(REPO, "main", "missing")
        bad = LakeFSVersionStore(url, "AKIAEXAMPLEKEY", SECRET + "-wrong")
        with pytest.raises(StoreError) as denied:
            bad.resolve(REPO, "main")

    basic = base64.b64encode(f"AKIAEXAMPLEKEY:{SECRET}".encode()).decode()
    shown = [repr(store), str(store), repr(bad), str(info.value), str(denied.value), caplog.text]
    shown += list(capsys.readouterr())
    assert caplog.records, "the operations above should have logged something at DEBUG"
    for text in shown:
        assert SECRET not in text and basic not in text
    assert repr(store) == f"LakeFSVersionStore(endpoint={url!r})"
    assert "401" in str(denied.value)


def test_from_env_reads_the_three_variables(tmp_path, monkeypatch):
    with lakefs_stub_server(tmp_path, credentials={"AKIAFROMENV": SECRET}) as server:
        monkeypatch.setenv("LAKEFS_ENDPOINT", server.url)
        monkeypatch.setenv("LAKEFS_ACCESS_KEY_ID", "AKIAFROMENV")
        monkeypatch.setenv("LAKEFS_SECRET_ACCESS_KEY", SECRET)
        store = LakeFSVersionStore.from_env()
        assert store.endpoint == server.url
        store.create_repository(REPO)  # the stub accepts only these exact credentials
        assert store.repository_exists(REPO)

        monkeypatch.delenv("LAKEFS_SECRET_ACCESS_KEY")
        with pytest.raises(StoreError, match="LAKEFS_SECRET_ACCESS_KEY"):
            LakeFSVersionStore.from_env()


def test_server_params_skip_without_an_endpoint(monkeypatch):
    monkeypatch.delenv("LAKEFS_ENDPOINT", raising=False)
    with pytest.raises(pytest.skip.Exception, match="LAKEFS_ENDPOINT"):
        with lakefs_server_store():
            pass


def test_the_spec_path_comes_from_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(SPEC_ENV, raising=False)
    assert spec_path() == DEFAULT_SPEC_PATH
    monkeypatch.setenv(SPEC_ENV, str(tmp_path / "spec.yml"))
    assert spec_path() == (tmp_path / "spec.yml").resolve()


def test_stub_tests_skip_without_a_spec_naming_the_path_and_the_variable(tmp_path: Path, monkeypatch):
    missing = tmp_path / "no-such-spec.yml"
    monkeypatch.setenv(SPEC_ENV, str(missing))
    with pytest.raises(pytest.skip.Exception) as skipped:
        with lakefs_stub_server(tmp_path):
            pass
    assert str(missing) in str(skipped.value) and SPEC_ENV in str(skipped.value)
