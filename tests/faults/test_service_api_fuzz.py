"""The live service under hostile input and under load, on one server for the module (start-up costs seconds).

* schemathesis generates requests for every operation of the service's own OpenAPI document (`/docs.json`), a
  bounded number per operation, derandomized: no answer may be a 5xx (`not_a_server_error`). Bad input is the
  client's fault and must be answered 4xx.
* a bounded loop of concurrent clients runs while the routing steps a canary 10 % → 50 % → 100 %, promotes it, then
  rolls back by hand: zero failed requests, counted per version. (The same rollout driven end to end by the canary
  controller through Dagster, with its own traffic, is tests/serving/test_serving_assets.py::
  test_canary_is_stepped_up_and_promoted_with_no_failed_request; this one adds the hand rollback and 4 clients.)

The server is tests/serving/test_service.py's fixture (a private BENTOML_HOME, an API key, a loopback port).
"""

from __future__ import annotations

import time
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from speech_assets.serving.traffic import Traffic
from tests.faults.helpers import report
from tests.serving.test_service import API_KEY, IMPORT, _in_env, _wav, post, read_version, server, set_routing  # noqa: F401

MAX_EXAMPLES = 30  # per operation and generation mode


def test_generated_requests_for_every_operation_get_no_5xx(server, tmp_path):
    url = server["url"]
    schema = schemathesis.openapi.from_url(f"{url}/docs.json")
    assert url.startswith("http://127.0.0.1:")  # loopback only
    statuses: dict[str, Counter] = {}
    server_errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/transcribe", "/transcribe_batch"}

    # positive: what the schema allows (random bytes as the audio file); negative: what it forbids (missing or
    # mistyped fields, wrong media types) - only where there is something to get wrong: the GETs take no input
    plan = [(op, GenerationMode.POSITIVE) for op in operations]
    plan += [(op, GenerationMode.NEGATIVE) for op in operations if op.method.upper() == "POST"]
    for op, mode in plan:
        seen = statuses.setdefault(f"{op.method.upper()} {op.path}", Counter())

        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case) -> None:
            headers = {"X-API-Key": API_KEY}
            response = case.call(base_url=url, headers=headers, timeout=60)
            seen[response.status_code] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error], headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # kept so the report lists every 5xx; fails below
                server_errors.append(f"{op.method.upper()} {op.path} -> {response.status_code}: "
                                     f"{response.text[:300]} ({type(exc).__name__})")

        run()

    sent = sum(sum(c.values()) for c in statuses.values())
    report(tmp_path, "service_api_fuzz", {
        "operations": len(operations), "requests_sent": sent, "max_examples_per_operation_and_mode": MAX_EXAMPLES,
        "statuses": {op: {str(k): v for k, v in sorted(c.items())} for op, c in statuses.items()},
        "server_errors": len(server_errors),
    })
    assert server_errors == [], server_errors[:5]
    assert sent >= len(operations)
    # the generator reached the code paths that matter: real uploads were refused with 4xx, not all by the auth wall
    transcribe = statuses["POST /transcribe"]
    assert any(400 <= s < 500 and s != 401 for s in transcribe), transcribe


def test_what_schemathesis_found_is_answered_400(server):
    """Regressions of the two 500s the fuzzing found (see MultipartGuard in bentos/asr/service.py)."""
    import urllib.error
    import urllib.request

    def raw_post(path: str, body: bytes, ctype: str) -> tuple[int, str]:
        req = urllib.request.Request(server["url"] + path, data=body, method="POST",
                                     headers={"Content-Type": ctype, "X-API-Key": API_KEY})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # a part with a broken header line (what schemathesis sent)
    status, body = raw_post("/transcribe", b"--b\r\n-255914626--b--\r\n", "multipart/form-data; boundary=b")
    assert status == 400 and "bad_multipart" in body, (status, body)
    # no boundary at all
    status, body = raw_post("/transcribe", b"whatever", "multipart/form-data")
    assert status == 400 and "bad_multipart" in body, (status, body)
    # a text value where a file belongs: BentoML would download it as a URL; here it names the service itself
    for field, path in (("audio", "/transcribe"), ("audios", "/transcribe_batch")):
        text = f"{server['url']}/metrics".encode()
        form = (b"--b\r\nContent-Disposition: form-data; name=\"" + field.encode() + b"\"\r\n\r\n" + text
                + b"\r\n--b--\r\n")
        status, body = raw_post(path, form, "multipart/form-data; boundary=b")
        assert status == 400 and "must be a file upload" in body, (status, body)
    # the guard holds bodies in memory, so it bounds them: a full batch of the largest files (32 x 2 MB here)
    status, body = raw_post("/transcribe_batch", b"\0" * (32 * 2_000_000 + (1 << 20) + 1), "multipart/form-data; boundary=b")
    assert status == 413 and "too_large" in body, (status, body)
    # and a good upload still goes through the guard untouched
    status, body = post(server["url"] + "/transcribe", [("audio", "a.wav", _wav(0.5))])
    assert status == 200 and body["duration_s"] == 0.5


def test_no_failed_request_during_canary_steps_promotion_and_hand_rollback(server, tmp_path):
    env, url = server["env"], server["url"]
    champion = read_version(server)
    new = "3.0.0"
    tag = _in_env(env, IMPORT.format(seed=3, version=new))
    phases: list[tuple[str, Counter]] = []

    with Traffic(url, [_wav(0.6), _wav(1.1)], clients=4, api_key=API_KEY) as users:
        def phase(name: str, routing: str | None, hold_s: float) -> None:
            if routing:
                set_routing(env, routing)
            time.sleep(0.6)  # the service polls the routing file every 0.25 s
            before = Counter(users.by_version)
            time.sleep(hold_s)
            phases.append((name, +(Counter(users.by_version) - before)))

        phase("champion only", None, 1.0)
        phase("canary 10%", f'write_state(path, read_state(path).with_challenger(ModelRef("{new}", "{tag}", 1.0), 10))',
              1.0)
        phase("canary 50%", "write_state(path, read_state(path).with_weight(50))", 1.5)
        phase("canary 100%", "write_state(path, read_state(path).with_weight(100))", 1.0)
        phase("promoted", "write_state(path, read_state(path).promoted())", 1.0)
        # by hand: the old champion back as a challenger at 100 %, then promoted back (what `models rollback` deploys)
        old_tag = f"asr:{champion}"
        phase("rollback", f'write_state(path, read_state(path).with_challenger(ModelRef("{champion}", "{old_tag}", '
                          f'1.0), 100).promoted())', 1.0)
    by_phase = dict(phases)
    figures = {"clients": 4, "requests_sent": users.sent, "failed": len(users.failed),
               "by_version": dict(users.by_version), "by_phase": {k: dict(v) for k, v in by_phase.items()}}
    report(tmp_path, "load_during_promotion", figures)
    assert users.failed == [], users.failed[:3]
    assert sum(users.by_version.values()) == users.sent and users.sent >= 30
    assert set(by_phase["champion only"]) == {champion}
    assert set(by_phase["canary 50%"]) == {champion, new}  # really split
    assert set(by_phase["promoted"]) == {new} and set(by_phase["canary 100%"]) == {new}
    assert set(by_phase["rollback"]) == {champion}
    assert read_version(server) == champion
