"""A loopback lakeFS API stub whose every request and response is checked against lakeFS's OpenAPI spec.

No lakeFS server runs on the development machines, yet the production adapter (`speech_assets/storage/lakefs.py`)
must be exercised through the real SDK. This stub answers the lakeFS REST endpoints that the SDK calls for the
`VersionStore` operations, translating each one into calls on a backend `VersionStore` (normally the local
store), and validates both directions with `openapi-core` against `lakefs-openapi.yml`:

* a request that violates the spec is recorded in `server.violations` and answered 500 with the validation
  error (never handed to the backend), so an SDK or adapter that drifts from the API fails the test loudly;
* a response that violates the spec is recorded the same way and replaced by a 500, so the stub itself cannot
  drift from the API unnoticed.

`server.corrupt_responses` maps an operationId (or a spec path template) to a function that mutates, in place,
the decoded JSON body of that operation's responses, so tests can prove that response validation really
catches drift (e.g. `server.corrupt_responses["statObject"] = lambda body: body.pop("checksum")`).
Requests for endpoints the stub does not implement are answered 501 and listed in `server.unhandled`.

Usage:

    with LakeFSStubServer(LocalVersionStore(tmp)) as url:
        store = LakeFSVersionStore(url, "AKIA...", "secret")

The spec is read from `$SPEECH_ASSETS_LAKEFS_SPEC` when set, else from `<repo root>/../shared/lakefs-openapi.yml`
(`spec_path()`); `LakeFSStubServer` raises `SpecNotFoundError` when there is none, and the fixtures
(`lakefs_fixtures.py`) turn that into a skip naming the path and the variable.

Test support only, so it lives under `tests/` (it needs the test extras `openapi-core` and `werkzeug`, which the
package never imports): single host, no auth beyond checking that credentials were sent (or, if `credentials` is
given, that they match), nothing reachable outside 127.0.0.1. It has no Dagster import.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.validation.request.exceptions import RequestBodyValidationError, SecurityValidationError
from openapi_core.validation.response.exceptions import MissingData
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from speech_assets.storage.base import (
    DEFAULT_BRANCH,
    AlreadyExistsError,
    ConcurrentUpdateError,
    ConflictError,
    DirtyBranchError,
    NotFoundError,
    NothingToCommitError,
    ObjectStat,
    StoreError,
    VersionStore,
)

log = logging.getLogger(__name__)

# tests/storage/lakefs_stub.py -> the repository root is three levels up; the spec is shared beside it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_ENV = "SPEECH_ASSETS_LAKEFS_SPEC"
DEFAULT_SPEC_PATH = (REPO_ROOT / ".." / "shared" / "lakefs-openapi.yml").resolve()


class SpecNotFoundError(FileNotFoundError):
    """There is no lakeFS OpenAPI spec where `spec_path()` looks; the message names the path and `SPEC_ENV`."""


def spec_path() -> Path:
    """Where the lakeFS OpenAPI spec is: `$SPEECH_ASSETS_LAKEFS_SPEC` when set, else `DEFAULT_SPEC_PATH`.

    Read at each call (not at import), so a test or a shell can point it elsewhere."""
    value = os.environ.get(SPEC_ENV)
    return Path(value).expanduser().resolve() if value else DEFAULT_SPEC_PATH


def require_spec(path: str | Path | None = None) -> Path:
    """`path` (default: `spec_path()`) if it is a file; raises SpecNotFoundError otherwise."""
    found = Path(path) if path is not None else spec_path()
    if not found.is_file():
        raise SpecNotFoundError(
            f"no lakeFS OpenAPI spec at {found}: set {SPEC_ENV} to the path of lakefs-openapi.yml "
            f"(default: {DEFAULT_SPEC_PATH})"
        )
    return found

API_PREFIX = "/api/v1"
STUB_VERSION = "1.0.0-speech-assets-stub"
# lakeFS's own page size cap (DefaultMaxPerPage): asked-for amounts above it, or <= 0, get this.
LAKEFS_MAX_PER_PAGE = 1000
_USER_META_HEADER = "x-lakefs-meta-"

Mutator = Callable[[Any], object]  # mutates the decoded JSON body in place


@dataclass(frozen=True)
class Violation:
    """One request or response that did not match the spec."""

    kind: str  # "request" or "response"
    method: str
    path: str
    operation: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.method} {self.path} ({self.operation}): {self.message}"


class _ApiError(Exception):
    """An error answered in lakeFS's shape: `{"message": ...}` with an HTTP status."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"message": message}


def _not_supported(what: str) -> _ApiError:
    # 501 rather than a silently wrong answer: the stub covers what the adapter uses, nothing more.
    return _ApiError(501, f"not implemented by the lakeFS stub: {what}")


# lakeFS's messages for these cases (graveler errors); the adapter recognises them by these words.
_STORE_ERRORS: tuple[tuple[type[Exception], int, Callable[[Exception], str]], ...] = (
    (NotFoundError, 404, str),
    (AlreadyExistsError, 409, str),
    (ConflictError, 409, lambda e: "conflict found"),
    (DirtyBranchError, 400, lambda e: "uncommitted changes (dirty branch)"),
    (NothingToCommitError, 400, lambda e: "commit: no changes"),
    (ConcurrentUpdateError, 503, str),
    (ValueError, 400, str),
    (StoreError, 500, str),
)


def _store_error(exc: Exception) -> _ApiError | None:
    for cls, status, message in _STORE_ERRORS:
        if isinstance(exc, cls):
            return _ApiError(status, message(exc))
    return None


@functools.lru_cache(maxsize=4)
def _load_spec(spec_path: str) -> tuple[OpenAPI, dict[str, Any]]:
    """Parse (and check) the spec once per process: it is ~6700 lines and takes seconds."""
    # The raw dict (for routing and operation flags) via libyaml when present: pure-Python YAML takes ~1 s.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(Path(spec_path).read_text(encoding="utf-8"), Loader=loader)
    return OpenAPI.from_file_path(spec_path), raw


def _describe(exc: BaseException) -> str:
    """Validation error text including the individual schema errors (str() alone hides them)."""
    parts = [str(exc)]
    details = getattr(exc, "details", None)
    if isinstance(details, dict):
        for err in details.get("schema_errors", []):
            where = "/".join(str(p) for p in err.get("path", [])) or "<root>"
            parts.append(f"{where}: {err.get('message')}")
    return "; ".join(parts)


def _page(items: Iterable[Any], key: Callable[[Any], str], after: str, amount: int) -> tuple[list[Any], dict]:
    """One page of a listing sorted by `key`, lakeFS style: items strictly after `after`, then `amount`."""
    page: list[Any] = []
    has_more = False
    for item in items:
        if after and key(item) <= after:
            continue
        if len(page) == amount:
            has_more = True
            break
        page.append(item)
    return page, {
        "has_more": has_more,
        "next_offset": key(page[-1]) if has_more else "",
        "results": len(page),
        "max_per_page": amount,
    }


def _object_stats(stat: ObjectStat, namespace: str, with_metadata: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": stat.path,
        "path_type": "object",
        "physical_address": f"{namespace}/data/{stat.checksum}",
        "checksum": stat.checksum,
        "size_bytes": stat.size_bytes,
        "mtime": 0,  # the port keeps no modification time
        "content_type": stat.content_type,
    }
    if with_metadata:
        out["metadata"] = dict(stat.metadata)
    return out


class _QuietHandler(WSGIRequestHandler):
    """No per-request access log lines on stderr (tests read the violations list instead)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)


class LakeFSStubServer:
    """lakeFS API stub on 127.0.0.1:<free port>, backed by any `VersionStore`."""

    def __init__(
        self,
        backend: VersionStore,
        spec_path: str | Path | None = None,
        *,
        username: str = "speech_assets",
        credentials: Mapping[str, str] | None = None,
        max_per_page: int = LAKEFS_MAX_PER_PAGE,
    ):
        self.backend = backend
        self.spec_path = require_spec(spec_path)  # default: spec_path(), the variable or the shared copy
        # lakeFS records the authenticated user as the committer; the stub has a single user.
        self.username = username
        self._credentials = dict(credentials) if credentials is not None else None
        self.max_per_page = max_per_page
        self.violations: list[Violation] = []
        self.unhandled: list[str] = []
        self.corrupt_responses: dict[str, Mutator] = {}
        self._openapi, raw_spec = _load_spec(str(self.spec_path))
        self._by_route: dict[tuple[str, str], str] = {}  # (spec path template, METHOD) -> operationId
        self._operations, self._url_map = self._routes(raw_spec)
        self._repos: dict[str, dict[str, Any]] = {}  # Repository records the backend protocol cannot hold
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> str:
        if self._server is None:
            self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler)
            self._thread = threading.Thread(target=self._server.serve_forever, name="lakefs-stub", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._thread = None

    @property
    def url(self) -> str:
        """Endpoint to hand to the SDK (it appends /api/v1 itself)."""
        if self._server is None:
            raise RuntimeError("the lakeFS stub is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- routing: rules come from the spec itself, for the operations this stub implements ---------
    def _routes(self, raw_spec: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], Map]:
        """Werkzeug rules for the spec paths that have at least one operation implemented here.

        A rule matches a path template for any method and `_handle` picks the operation by method: werkzeug
        would otherwise answer HEAD with the GET rule, and HEAD (headObject) is a different operation.
        """
        operations: dict[str, dict[str, Any]] = {}
        rules = []
        for template, item in raw_spec["paths"].items():
            implemented = False
            for method, op in item.items():
                if not isinstance(op, dict) or "operationId" not in op:
                    continue
                operations[op["operationId"]] = {"template": template, **op}
                if hasattr(self, f"op_{op['operationId']}"):
                    self._by_route[(template, method.upper())] = op["operationId"]
                    implemented = True
            if implemented:
                rule_path = API_PREFIX + template.replace("{", "<").replace("}", ">")
                rules.append(Rule(rule_path, endpoint=template))
        return operations, Map(rules, strict_slashes=False, merge_slashes=False)

    # -- WSGI entry point -------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            template, args = adapter.match()
            op_id = self._by_route.get((template, request.method))
        except HTTPException:
            op_id, args = None, {}

        openapi_request = WerkzeugOpenAPIRequest(request)
        problems = self._request_problems(openapi_request, op_id)
        if problems is not None:
            return problems

        if op_id is None:
            route = f"{request.method} {request.path}"
            self.unhandled.append(route)
            log.warning("lakeFS stub: no handler for %s", route)
            response = self._json(501, {"message": f"not implemented by the lakeFS stub: {route}"})
        else:
            try:
                response = getattr(self, f"op_{op_id}")(request, **args)
            except _ApiError as exc:
                response = self._json(exc.status, exc.body)
            except Exception as exc:  # backend errors become lakeFS-shaped errors
                api_error = _store_error(exc)
                if api_error is None:
                    log.exception("lakeFS stub: handler %s failed", op_id)
                    api_error = _ApiError(500, f"{type(exc).__name__}: {exc}")
                response = self._json(api_error.status, api_error.body)
            response = self._corrupt(op_id, response)

        errors = [
            _describe(e)
            for e in self._openapi.iter_response_errors(openapi_request, WerkzeugOpenAPIResponse(response))
            if not self._empty_binary_body(e, op_id, response)
        ]
        if errors:
            return self._violation("response", request, op_id, errors)
        return response

    def _request_problems(self, openapi_request: WerkzeugOpenAPIRequest, op_id: str | None) -> Response | None:
        request = openapi_request.request
        errors = list(self._openapi.iter_request_errors(openapi_request))
        if any(isinstance(e, SecurityValidationError) for e in errors) or not self._authorized(request):
            # Missing or wrong credentials are an auth failure, not API drift: answer as lakeFS does.
            return self._json(401, {"message": "error authenticating request"})
        if op_id is not None and self._operations[op_id].get("x-validation-exclude-body"):
            # lakeFS itself skips body validation here (uploadObject takes any Content-Type, raw bytes).
            errors = [e for e in errors if not isinstance(e, RequestBodyValidationError)]
        if errors:
            return self._violation("request", request, op_id, [_describe(e) for e in errors])
        return None

    def _empty_binary_body(self, error: Exception, op_id: str | None, response: Response) -> bool:
        """openapi-core calls an empty body "missing data", but an empty object is a valid binary string.

        Only that case is excused: the error is MissingData, the body really is empty and every media type
        the spec declares for this status is `type: string, format: binary` (getObject's 200).
        """
        if not isinstance(error, MissingData) or op_id is None or response.get_data():
            return False
        responses = self._operations[op_id].get("responses", {})
        declared = responses.get(response.status_code) or responses.get(str(response.status_code)) or {}
        schemas = [m.get("schema", {}) for m in declared.get("content", {}).values()]
        return bool(schemas) and all(s.get("type") == "string" and s.get("format") == "binary" for s in schemas)

    def _authorized(self, request: Request) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        if self._credentials is None:
            return bool(auth.username)
        return self._credentials.get(auth.username or "") == auth.password

    def _violation(self, kind: str, request: Request, op_id: str | None, errors: list[str]) -> Response:
        violation = Violation(kind, request.method, request.full_path.rstrip("?"), op_id, " | ".join(errors))
        self.violations.append(violation)
        log.error("lakeFS stub: OpenAPI %s violation: %s", kind, violation)
        return Response(f"OpenAPI {kind} validation failed: {violation.message}", status=500, mimetype="text/plain")

    def _corrupt(self, op_id: str, response: Response) -> Response:
        """Fault injection: let a test mutate this operation's JSON response body."""
        mutate = self.corrupt_responses.get(op_id) or self.corrupt_responses.get(self._operations[op_id]["template"])
        if mutate is None or response.mimetype != "application/json":
            return response
        body = json.loads(response.get_data())
        mutate(body)  # in place; the return value is ignored so `lambda b: b.pop("x")` just works
        return self._json(response.status_code, body)

    @staticmethod
    def _json(status: int, body: Any) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    # -- request helpers --------------------------------------------------------------------------
    def _amount(self, request: Request) -> int:
        amount = request.args.get("amount", type=int)
        limit = min(self.max_per_page, LAKEFS_MAX_PER_PAGE)
        return limit if amount is None or amount <= 0 or amount > limit else amount

    def _namespace(self, repo: str) -> str:
        return self._repo_record(repo)["storage_namespace"]

    def _repo_record(self, repo: str) -> dict[str, Any]:
        record = self._repos.get(repo)
        if record is None:
            if not self.backend.repository_exists(repo):
                raise _ApiError(404, f"repository not found: {repo}")
            # Created directly on the backend: synthesize what lakeFS would know about it.
            branches = self.backend.list_branches(repo)
            default = DEFAULT_BRANCH if DEFAULT_BRANCH in branches or not branches else min(branches)
            record = {"id": repo, "creation_date": 0, "default_branch": default,
                      "storage_namespace": f"local://stub/{repo}"}
            self._repos[repo] = record
        return record

    def _commit_json(self, repo: str, ref: str) -> dict[str, Any]:
        c = self.backend.get_commit(repo, ref)
        return {
            "id": c.id,
            "parents": list(c.parents),
            "committer": c.committer,
            "message": c.message,
            "creation_date": int(c.creation_date),
            "meta_range_id": "",  # the port has no metaranges
            "metadata": dict(c.metadata),
        }

    def _require_branch(self, repo: str, branch: str) -> str:
        self._repo_record(repo)
        head = self.backend.list_branches(repo).get(branch)
        if head is None:
            raise _ApiError(404, f"branch not found: {branch}")
        return head

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        return request.get_json(silent=True) or {}

    # -- server config: the one call the SDK makes on its own (Client.version, pre-sign capability) ---
    def _storage_config(self) -> dict[str, Any]:
        # pre_sign_support False steers the SDK to upload/download through the API, never to a blockstore.
        return {
            "blockstore_type": "local",
            "blockstore_id": "",
            "blockstore_namespace_example": "local://speech-assets/",
            "blockstore_namespace_ValidityRegex": "^local://",
            "default_namespace_prefix": "local://speech-assets",
            "pre_sign_support": False,
            "pre_sign_support_ui": False,
            "import_support": False,
            "import_validity_regex": "^local://",
        }

    def op_getConfig(self, request: Request) -> Response:
        return self._json(200, {
            "version_config": {"version": STUB_VERSION},
            "storage_config": self._storage_config(),
            "storage_config_list": [self._storage_config()],
        })

    # -- repositories -----------------------------------------------------------------------------
    def op_createRepository(self, request: Request) -> Response:
        body = self._body(request)
        if request.args.get("bare", "false").lower() == "true" or body.get("sample_data") or body.get("read_only"):
            raise _not_supported("bare, sample-data or read-only repositories")
        name = body["name"]
        if self.backend.repository_exists(name):
            raise _ApiError(409, "repository already exists")
        default_branch = body.get("default_branch") or DEFAULT_BRANCH
        self.backend.create_repository(name, default_branch=default_branch, exist_ok=False)
        record = {"id": name, "creation_date": int(time.time()), "default_branch": default_branch,
                  "storage_namespace": body["storage_namespace"]}
        self._repos[name] = record
        return self._json(201, record)

    def op_getRepository(self, request: Request, repository: str) -> Response:
        return self._json(200, self._repo_record(repository))

    # -- branches ---------------------------------------------------------------------------------
    def op_listBranches(self, request: Request, repository: str) -> Response:
        self._repo_record(repository)
        prefix = request.args.get("prefix", "")
        refs = [{"id": b, "commit_id": c} for b, c in sorted(self.backend.list_branches(repository).items())
                if b.startswith(prefix)]
        page, pagination = _page(refs, lambda r: r["id"], request.args.get("after", ""), self._amount(request))
        return self._json(200, {"pagination": pagination, "results": page})

    def op_createBranch(self, request: Request, repository: str) -> Response:
        body = self._body(request)
        if body.get("force") or body.get("hidden"):
            raise _not_supported("forced or hidden branches")
        self._repo_record(repository)
        if body["name"] in self.backend.list_branches(repository):
            raise _ApiError(409, "branch already exists")
        commit_id = self.backend.create_branch(repository, body["name"], body["source"], exist_ok=False)
        # The spec declares text/html: lakeFS answers the new branch's commit id as plain text.
        return Response(commit_id, status=201, mimetype="text/html")

    def op_getBranch(self, request: Request, repository: str, branch: str) -> Response:
        return self._json(200, {"id": branch, "commit_id": self._require_branch(repository, branch)})

    def op_deleteBranch(self, request: Request, repository: str, branch: str) -> Response:
        self._require_branch(repository, branch)
        if branch == self._repo_record(repository)["default_branch"]:
            raise _ApiError(403, "cannot delete the repository's default branch")
        self.backend.delete_branch(repository, branch)
        return Response(status=204)

    def op_resetBranch(self, request: Request, repository: str, branch: str) -> Response:
        body = self._body(request)
        if body.get("type") != "reset":
            raise _not_supported("resetting a single object or prefix")  # the port resets whole branches
        self._require_branch(repository, branch)
        self.backend.reset_branch(repository, branch)
        return Response(status=204)

    def op_diffBranch(self, request: Request, repository: str, branch: str) -> Response:
        if request.args.get("delimiter"):
            raise _not_supported("diff with a delimiter")
        self._require_branch(repository, branch)
        prefix = request.args.get("prefix", "")
        changes = [c for c in self.backend.uncommitted(repository, branch) if c.path.startswith(prefix)]
        return self._diff_page(request, changes)

    def op_commit(self, request: Request, repository: str, branch: str) -> Response:
        body = self._body(request)
        if request.args.get("source_metarange") or body.get("date") is not None or body.get("force"):
            raise _not_supported("commit with source_metarange, date or force")
        self._require_branch(repository, branch)
        commit_id = self.backend.commit(
            repository,
            branch,
            body["message"],
            metadata=body.get("metadata") or {},
            committer=self.username,
            allow_empty=bool(body.get("allow_empty", False)),
        )
        return self._json(201, self._commit_json(repository, commit_id))

    def op_revertBranch(self, request: Request, repository: str, branch: str) -> Response:
        body = self._body(request)
        overrides = body.get("commit_overrides") or {}
        if body.get("force") or body.get("allow_empty") or overrides.get("metadata"):
            raise _not_supported("revert with force, allow_empty or metadata overrides")
        self._require_branch(repository, branch)
        parent_number = int(body["parent_number"])
        if parent_number == 0:
            # lakeFS accepts 0 for an ordinary commit (its only parent) but not for a merge commit.
            parents = self.backend.get_commit(repository, body["ref"]).parents
            if len(parents) > 1:
                raise _ApiError(400, "must specify 1-based parent number for reverting merge commit")
            parent_number = 1
        self.backend.revert(repository, branch, body["ref"], parent_number=parent_number,
                            message=overrides.get("message"))
        return Response(status=204)

    # -- objects ----------------------------------------------------------------------------------
    def op_uploadObject(self, request: Request, repository: str, branch: str) -> Response:
        if request.args.get("storageClass") or request.headers.get("If-Match"):
            raise _not_supported("storageClass or If-Match uploads")
        path = request.args["path"]
        self._require_branch(repository, branch)
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("content")
            if upload is None:
                raise _ApiError(400, "missing 'content' file in multipart upload")
            data, content_type = upload.read(), upload.mimetype or "application/octet-stream"
        else:
            data, content_type = request.get_data(), request.content_type or "application/octet-stream"
        if request.headers.get("If-None-Match") == "*":
            try:
                self.backend.stat_object(repository, branch, path)
            except NotFoundError:
                pass
            else:
                raise _ApiError(412, "object already exists")
        # lakeFS lower-cases user-metadata keys taken from X-Lakefs-Meta-* headers (HTTP names are
        # case-insensitive), so keys written through the API always come back lower-case.
        metadata = {
            key[len(_USER_META_HEADER):].lower(): value
            for key, value in request.headers.items()
            if key.lower().startswith(_USER_META_HEADER)
        }
        stat = self.backend.put_object(repository, branch, path, data, content_type=content_type, metadata=metadata)
        return self._json(201, _object_stats(stat, self._namespace(repository)))

    def op_getObject(self, request: Request, repository: str, ref: str) -> Response:
        if request.args.get("presign", "false").lower() == "true":
            raise _not_supported("pre-signed URLs")
        if request.headers.get("Range"):
            # Deliberately unimplemented: the spec's Content-Range pattern ('^bytes=...') contradicts HTTP's
            # "bytes a-b/size", so a correct 206 could not pass validation. The adapter reads whole objects.
            raise _not_supported("ranged reads")
        path = request.args["path"]
        self._repo_record(repository)
        stat = self.backend.stat_object(repository, ref, path)
        if request.headers.get("If-None-Match") == f'"{stat.checksum}"':
            return Response(status=304)
        data = self.backend.get_object(repository, ref, path)
        # The spec declares application/octet-stream only, whatever the object's own content type.
        response = Response(data, status=200, mimetype="application/octet-stream")
        response.headers["ETag"] = f'"{stat.checksum}"'
        response.headers["Last-Modified"] = "Thu, 01 Jan 1970 00:00:00 GMT"
        return response

    def op_headObject(self, request: Request, repository: str, ref: str) -> Response:
        if request.headers.get("Range"):
            raise _not_supported("ranged reads")
        self._repo_record(repository)
        stat = self.backend.stat_object(repository, ref, request.args["path"])
        response = Response(status=200)
        response.headers["Content-Length"] = str(stat.size_bytes)
        response.headers["ETag"] = f'"{stat.checksum}"'
        response.headers["Last-Modified"] = "Thu, 01 Jan 1970 00:00:00 GMT"
        return response

    def op_statObject(self, request: Request, repository: str, ref: str) -> Response:
        if request.args.get("presign", "false").lower() == "true":
            raise _not_supported("pre-signed URLs")
        path = request.args["path"]
        self._repo_record(repository)
        stat = self.backend.stat_object(repository, ref, path)
        with_metadata = request.args.get("user_metadata", "true").lower() != "false"
        return self._json(200, _object_stats(stat, self._namespace(repository), with_metadata))

    def op_deleteObject(self, request: Request, repository: str, branch: str) -> Response:
        self._require_branch(repository, branch)
        try:
            self.backend.delete_object(repository, branch, request.args["path"])
        except NotFoundError:
            pass  # lakeFS: "Missing objects will not return a NotFound error" (S3-style idempotent delete)
        return Response(status=204)

    def op_listObjects(self, request: Request, repository: str, ref: str) -> Response:
        if request.args.get("delimiter"):
            raise _not_supported("listing with a delimiter")
        if request.args.get("presign", "false").lower() == "true":
            raise _not_supported("pre-signed URLs")
        self._repo_record(repository)
        with_metadata = request.args.get("user_metadata", "true").lower() != "false"
        namespace = self._namespace(repository)
        stats = self.backend.list_objects(repository, ref, request.args.get("prefix", ""))
        page, pagination = _page(stats, lambda s: s.path, request.args.get("after", ""), self._amount(request))
        results = [_object_stats(s, namespace, with_metadata) for s in page]
        return self._json(200, {"pagination": pagination, "results": results})

    # -- refs and history -------------------------------------------------------------------------
    def op_getCommit(self, request: Request, repository: str, commitId: str) -> Response:
        self._repo_record(repository)
        return self._json(200, self._commit_json(repository, commitId))

    def op_logCommits(self, request: Request, repository: str, ref: str) -> Response:
        unsupported = [p for p in ("objects", "prefixes", "limit", "first_parent", "since", "stop_at") if p in request.args]
        if unsupported:
            raise _not_supported(f"log filters {unsupported}")
        self._repo_record(repository)
        commits = self.backend.log(repository, ref)
        after = request.args.get("after", "")
        if after:
            # lakeFS's log cursor is the last commit id returned: continue right after it.
            ids = [c.id for c in commits]
            commits = commits[ids.index(after) + 1:] if after in ids else []
        amount = self._amount(request)
        page, has_more = commits[:amount], len(commits) > amount
        pagination = {"has_more": has_more, "next_offset": page[-1].id if has_more else "",
                      "results": len(page), "max_per_page": amount}
        return self._json(200, {"pagination": pagination,
                                "results": [self._commit_json(repository, c.id) for c in page]})

    def op_diffRefs(self, request: Request, repository: str, leftRef: str, rightRef: str) -> Response:
        if request.args.get("type", "three_dot") != "two_dot":
            # three_dot (lakeFS's default) diffs from the merge base, which the port cannot name.
            raise _not_supported("three_dot diff; ask for type=two_dot")
        if request.args.get("delimiter") or request.args.get("include_right_stats", "false").lower() == "true":
            raise _not_supported("diff with a delimiter or right-side stats")
        self._repo_record(repository)
        changes = self.backend.diff(repository, leftRef, rightRef, prefix=request.args.get("prefix", ""))
        return self._diff_page(request, changes)

    def _diff_page(self, request: Request, changes: list[Any]) -> Response:
        results = [{"type": c.type, "path": c.path, "path_type": "object",
                    **({"size_bytes": c.size_bytes} if c.size_bytes is not None else {})} for c in changes]
        page, pagination = _page(sorted(results, key=lambda r: r["path"]), lambda r: r["path"],
                                 request.args.get("after", ""), self._amount(request))
        return self._json(200, {"pagination": pagination, "results": page})

    def op_mergeIntoBranch(self, request: Request, repository: str, sourceRef: str, destinationBranch: str) -> Response:
        body = self._body(request)
        if body.get("strategy") or body.get("force") or body.get("allow_empty") or body.get("squash_merge"):
            raise _not_supported("merge strategy, force, allow_empty or squash")
        before = self._require_branch(repository, destinationBranch)
        try:
            result = self.backend.merge(repository, sourceRef, destinationBranch,
                                        message=body.get("message"), metadata=body.get("metadata"))
        except ConflictError:
            # lakeFS answers 409 with a MergeResult whose reference is empty (newer servers add a message);
            # it does not name the conflicting paths.
            raise _ApiError(409, "conflict found", {"reference": "", "message": "conflict found"}) from None
        if result == before:
            # The local store treats "source already contained" as a no-op; lakeFS refuses it (ErrNoChanges).
            raise _ApiError(400, "no changes")
        return self._json(200, {"reference": result})

    def op_findMergeBase(self, request: Request, repository: str, sourceRef: str, destinationBranch: str) -> Response:
        self._require_branch(repository, destinationBranch)
        # The port has no merge-base call; derive it from the logs the way the local store does: the newest
        # commit reachable from the source that the destination also reaches (log order is newest first).
        destination = self.backend.log(repository, destinationBranch)
        reachable = {c.id for c in destination}
        source = self.backend.log(repository, sourceRef)
        base = next((c.id for c in source if c.id in reachable), None)
        if base is None:
            raise _ApiError(404, f"no merge base for {sourceRef} and {destinationBranch}")
        return self._json(200, {"source_commit_id": source[0].id, "destination_commit_id": destination[0].id,
                                "base_commit_id": base})

    # -- tags -------------------------------------------------------------------------------------
    def op_createTag(self, request: Request, repository: str) -> Response:
        body = self._body(request)
        if body.get("force"):
            raise _not_supported("forced tags")
        self._repo_record(repository)
        if body["id"] in self.backend.list_tags(repository):
            raise _ApiError(409, "tag already exists")
        commit_id = self.backend.create_tag(repository, body["id"], body["ref"], exist_ok=False)
        return self._json(201, {"id": body["id"], "commit_id": commit_id})

    def op_listTags(self, request: Request, repository: str) -> Response:
        self._repo_record(repository)
        prefix = request.args.get("prefix", "")
        refs = [{"id": t, "commit_id": c} for t, c in sorted(self.backend.list_tags(repository).items())
                if t.startswith(prefix)]
        page, pagination = _page(refs, lambda r: r["id"], request.args.get("after", ""), self._amount(request))
        return self._json(200, {"pagination": pagination, "results": page})

