"""The release policy (typed, validated, versioned in the store) and named approvals of gated stage changes; the
`approve` / `policy` CLI; the canary policy the serving resource builds from the stored policy."""

from __future__ import annotations

import json
import math

import pytest

from speech_assets.cli import main as cli_main
from speech_assets.governance.approvals import ApprovalError, approvals_for, approve, check_stage_change
from speech_assets.storage.audit_log import APPROVAL, POLICY_CHANGE, read_events
from speech_assets.governance.audit import verify_append_only
from speech_assets.governance.policy import (
    DEFAULT_POLICY,
    POLICY_PATH,
    ApprovalPolicy,
    ApprovalRule,
    PolicyError,
    ReleasePolicy,
    RollbackPolicy,
    load_policy,
    policy_history,
    read_policy,
    save_policy,
)
from speech_assets.registry.registry import ModelRegistry
from speech_assets.serving.canary import CanaryPolicy, ProbeResult, VersionMetrics, decide
from speech_assets.storage.local import LocalVersionStore

REPO, NAME = "gov", "asr"
COMMON = dict(data_commits=["a" * 64], vocabulary_hash="v", code_version="1", training_config={},
              eval_report_json=b"{}", calibration_json={"temperature": 1.0}, actor="trainer")


@pytest.fixture
def store(tmp_path):
    s = LocalVersionStore(tmp_path / "store")
    s.create_repository(REPO)
    yield s
    s.close()


@pytest.fixture
def models(store):
    """asr 1.0.0 in production, 1.1.0 (a retrain: minor) and 2.0.0 (new features: major) as candidates."""
    reg = ModelRegistry(store, REPO)
    reg.register(NAME, b"w1", feature_config_hash="f1", seed=1, **COMMON)
    reg.set_stage(NAME, "1.0.0", "production", "trainer", "first model")
    assert reg.register(NAME, b"w2", feature_config_hash="f1", seed=2, **COMMON).version == "1.1.0"
    assert reg.register(NAME, b"w3", feature_config_hash="f2", seed=3, **COMMON).version == "2.0.0"
    return reg


# -- the typed policy ------------------------------------------------------------------------------------
def test_default_policy_round_trips_and_matches_the_canary_defaults():
    data = DEFAULT_POLICY.to_bytes()
    assert ReleasePolicy.from_bytes(data) == DEFAULT_POLICY
    assert ReleasePolicy.from_json({}) == DEFAULT_POLICY  # every section has its defaults
    assert DEFAULT_POLICY.to_canary_policy() == CanaryPolicy()  # the stored defaults change nothing by themselves
    body = json.loads(data)
    assert body["approvals"]["bootstrap_exempt"] is True
    assert body["approvals"]["rules"] == [{"to_stage": "production", "bumps": ["major"], "approvals": 1, "approvers": []}]

    custom = ReleasePolicy(
        ApprovalPolicy(False, (ApprovalRule("production", ("major", "minor"), 2, ("alice", "bob", "carol")),
                               ApprovalRule("canary", ("initial",), 1, ()))),
        rollback=RollbackPolicy(max_error_rate=0.005),
    )
    again = ReleasePolicy.from_bytes(custom.to_bytes())
    assert again == custom and again.to_canary_policy().max_error_rate == 0.005
    assert again.approvals.rule_for("production", "minor").approvals == 2
    assert again.approvals.rule_for("production", "patch") is None


def test_validation_lists_every_problem_with_its_path():
    bad = {
        "schema": 9,
        "approvals": {"bootstrap_exempt": "yes", "rules": [
            {"to_stage": "prod", "bumps": ["huge"], "approvals": 0},
            {"to_stage": "production", "bumps": ["major"], "approvals": 3, "approvers": ["alice"]},
        ]},
        "risk": {"canary_steps": [50, 10], "min_requests": 0},
        "rollback": {"max_eror_rate": 0.01, "max_error_rate": 1.5, "max_p95_latency_s": -1},
        "extra": 1,
    }
    with pytest.raises(PolicyError) as err:
        ReleasePolicy.from_json(bad)
    problems = "\n".join(err.value.problems)
    for expected in (
        "$.extra: unknown key", "schema: this code reads schema 1, got 9",
        "approvals.bootstrap_exempt: must be true or false", "approvals.rules[0].to_stage: must be one of canary, production",
        "approvals.rules[0].bumps: unknown bump 'huge'", "approvals.rules[0].approvals: must be an integer >= 1",
        "approvals.rules[1].approvals: 3 approvals can never be reached with 1 listed approver",
        "risk.canary_steps: must be percentages > 0, strictly increasing, ending at 100",
        "risk.min_requests: must be an integer >= 1", "rollback.max_eror_rate: unknown key",
        "rollback.max_error_rate: must be <= 1, got 1.5", "rollback.max_p95_latency_s: must be > 0, got -1",
    ):
        assert expected in problems, expected
    assert len(err.value.problems) == 12
    overlapping = {"approvals": {"rules": [{"to_stage": "production", "bumps": ["major"]},
                                           {"to_stage": "production", "bumps": ["minor", "major"]}]}}
    with pytest.raises(PolicyError, match="two rules gate production of major versions"):
        ReleasePolicy.from_json(overlapping)
    with pytest.raises(PolicyError, match="not valid JSON"):
        ReleasePolicy.from_bytes(b"{nope")
    with pytest.raises(PolicyError, match="must be a finite number"):
        ReleasePolicy.from_json({"rollback": {"max_probe_wer": math.nan}})


# -- in the store ------------------------------------------------------------------------------------------
def test_save_commits_the_policy_with_its_event_in_one_merge_and_history_shows_it(store):
    assert read_policy(store, REPO).stored is False and load_policy(store, REPO) == DEFAULT_POLICY
    assert policy_history(store, REPO) == []
    tighter = ReleasePolicy(rollback=RollbackPolicy(max_error_rate=0.005))
    c1 = save_policy(store, REPO, tighter, "alice", "a bad week on telephone audio")
    assert load_policy(store, REPO) == tighter and read_policy(store, REPO).commit == c1
    # one merge on main carries both the file and its policy_change event
    head = store.get_commit(REPO, c1)
    added = {ch.path for ch in store.diff(REPO, head.parents[0], c1)}
    (event,) = read_events(store, REPO, action=POLICY_CHANGE)
    assert added == {POLICY_PATH, event.path}
    assert event.actor == "alice" and event.evidence["previous_sha256"] is None
    assert event.evidence["sha256"] == tighter.sha256 and event.evidence["policy"]["rollback"]["max_error_rate"] == 0.005

    looser = ReleasePolicy(rollback=RollbackPolicy(max_error_rate=0.03))
    c2 = save_policy(store, REPO, looser, "bob", "recovered")
    with pytest.raises(ValueError, match="already exactly this"):
        save_policy(store, REPO, looser, "bob", "again")
    with pytest.raises(ValueError, match="needs a reason"):
        save_policy(store, REPO, tighter, "bob", " ")
    with pytest.raises(ValueError, match="named actor"):
        save_policy(store, REPO, tighter, "", "x")
    history = policy_history(store, REPO)
    assert [(h.commit, h.actor, h.reason) for h in history] == [
        (c2, "bob", "recovered"), (c1, "alice", "a bad week on telephone audio")]
    assert history[0].sha256 == looser.sha256
    assert load_policy(store, REPO, ref=c1) == tighter  # versioned: the policy as it was at any commit
    assert verify_append_only(store, REPO).ok
    assert set(store.list_branches(REPO)) == {"main"}  # the policy branches are gone


def test_a_stored_policy_that_no_longer_parses_is_an_error_not_the_defaults(store):
    from speech_assets.storage.publish import publish_objects

    publish_objects(store, REPO, {POLICY_PATH: b'{"rollback": {"max_error_rate": 7}}'}, branch_prefix="x",
                    message="hand edit", metadata={})
    with pytest.raises(PolicyError, match=r"release_policy.json at [0-9a-f]{12}: rollback.max_error_rate"):
        load_policy(store, REPO)
    assert len(policy_history(store, REPO)) == 1  # a change made by other means shows in the history too


# -- approvals ---------------------------------------------------------------------------------------------
def test_approve_records_who_why_when_and_through_what(store, models):
    a = approve(store, REPO, NAME, "2.0.0", "production", "alice", "reviewed the eval report")
    b = approve(store, REPO, NAME, "2.0.0", "production", "bob", "on call", via="dagster-run:abc123")
    got = approvals_for(store, REPO, NAME, "2.0.0", "production")
    assert [(x.approver, x.reason, x.via) for x in got] == [
        ("alice", "reviewed the eval report", "cli"), ("bob", "on call", "dagster-run:abc123")]
    assert got[0].ts == a.ts and a.ts.endswith("Z") and got[1].event_id == b.event_id
    (e1, e2) = read_events(store, REPO, action=APPROVAL)
    assert e1.subject == "asr 2.0.0 -> production" and e1.evidence["bump"] == "major"
    assert e1.evidence["stage_at_approval"] == "candidate"
    run_commit = [c for c in store.log(REPO, "main") if c.metadata.get("audit_event") == b.event_id]
    assert run_commit and run_commit[0].metadata["run_id"] == "abc123"  # the run that carried it
    assert approvals_for(store, REPO, NAME, "2.0.0", "canary") == []  # one stage change, nothing wider
    assert approvals_for(store, REPO, NAME, "1.1.0", "production") == []


@pytest.mark.parametrize("args, message", [
    (("asr", "9.9.9", "production", "alice", "x"), "asr 9.9.9 is not a registered version"),
    (("nope", "1.0.0", "production", "alice", "x"), "nope 1.0.0 is not a registered version"),
    (("asr", "2.0.0", "production", " ", "x"), "approver's name"),
    (("asr", "2.0.0", "production", "alice", ""), "needs a reason"),
    (("asr", "2.0.0", "archived", "alice", "x"), "only changes to canary, production are gated"),
    (("asr", "1.0.0", "production", "alice", "x"), "already production"),
])
def test_approve_refuses_what_cannot_be_approved(store, models, args, message):
    with pytest.raises(ApprovalError, match=message):
        approve(store, REPO, *args)
    assert read_events(store, REPO, action=APPROVAL) == []


def test_approve_refuses_a_bad_channel_a_second_approval_by_the_same_name_and_an_archived_version(store, models):
    with pytest.raises(ApprovalError, match="via must be"):
        approve(store, REPO, NAME, "2.0.0", "production", "alice", "x", via="dagster-run:")
    approve(store, REPO, NAME, "2.0.0", "production", "alice", "x")
    with pytest.raises(ApprovalError, match="alice already approved asr 2.0.0 -> production"):
        approve(store, REPO, NAME, "2.0.0", "production", "alice", "again")
    models.set_stage(NAME, "1.1.0", "archived", "trainer", "superseded")
    with pytest.raises(ApprovalError, match="asr 1.1.0 is archived; it cannot move to production"):
        approve(store, REPO, NAME, "1.1.0", "production", "alice", "x")


def test_an_approver_not_on_the_rules_list_is_refused_and_does_not_count(store, models):
    policy = ReleasePolicy(ApprovalPolicy(rules=(ApprovalRule("production", ("major",), 1, ("carol",)),)))
    save_policy(store, REPO, policy, "lead", "only carol signs off majors")
    with pytest.raises(ApprovalError, match="alice may not approve this.*lists only carol"):
        approve(store, REPO, NAME, "2.0.0", "production", "alice", "x")
    # an approval given under an older, wider policy does not count under the new list either
    approve(store, REPO, NAME, "2.0.0", "production", "alice", "x", policy=DEFAULT_POLICY)
    check = check_stage_change(store, REPO, load_policy(store, REPO), models, NAME, "2.0.0", "production")
    assert check.required and not check.satisfied and check.approvers == []
    assert "--who carol" in check.message
    approve(store, REPO, NAME, "2.0.0", "production", "carol", "fine")
    check = check_stage_change(store, REPO, load_policy(store, REPO), models, NAME, "2.0.0", "production")
    assert check.satisfied and check.approvers == ["carol"]


def test_a_gate_hold_makes_an_ungated_change_need_one_named_approval(store, models):
    """The promotion gate could not judge the drift that triggered a minor retrain: its canary waits for a name."""
    policy = load_policy(store, REPO)
    hold = "no held-out evidence for accent=caribbean (drift in day-09): too few to judge (1 speakers < 3)"
    assert not check_stage_change(store, REPO, policy, models, NAME, "1.1.0", "canary").required
    check = check_stage_change(store, REPO, policy, models, NAME, "1.1.0", "canary", gate_holds=[hold])
    assert check.required and not check.satisfied and check.needed == 1
    assert "held by the promotion gate: no held-out evidence for accent=caribbean" in check.message
    assert "python -m speech_assets approve asr 1.1.0 --to canary" in check.message
    approve(store, REPO, NAME, "1.1.0", "canary", "dana", "listened to the caribbean clips")
    check = check_stage_change(store, REPO, policy, models, NAME, "1.1.0", "canary", gate_holds=[hold])
    assert check.satisfied and check.approvers == ["dana"]
    # a rule of the policy for that change still says how many and who
    carol = ReleasePolicy(ApprovalPolicy(rules=(ApprovalRule("canary", ("minor",), 1, ("carol",)),)))
    check = check_stage_change(store, REPO, carol, models, NAME, "1.1.0", "canary", gate_holds=[hold])
    assert not check.satisfied and check.approvers == [] and "--who carol" in check.message


def test_check_says_what_is_gated_and_what_to_run(store, models):
    policy = load_policy(store, REPO)
    check = check_stage_change(store, REPO, policy, models, NAME, "2.0.0", "production")
    assert check.required and not check.satisfied and check.needed == 1
    assert "python -m speech_assets approve asr 2.0.0 --to production --who NAME --why TEXT" in check.message
    assert "0 of 1 approval recorded" in check.message
    minor = check_stage_change(store, REPO, policy, models, NAME, "1.1.0", "production")
    assert not minor.required and minor.satisfied and "no release-policy rule" in minor.message
    canary = check_stage_change(store, REPO, policy, models, NAME, "2.0.0", "canary")
    assert not canary.required  # the default policy gates production only; the canary's guardrails stand guard

    two = ReleasePolicy(ApprovalPolicy(rules=(ApprovalRule("production", ("major", "minor"), 2, ()),)))
    approve(store, REPO, NAME, "1.1.0", "production", "alice", "ok", policy=two)
    check = check_stage_change(store, REPO, two, models, NAME, "1.1.0", "production")
    assert not check.satisfied and "1 of 2 approvals recorded (so far: alice)" in check.message
    approve(store, REPO, NAME, "1.1.0", "production", "bob", "ok", policy=two)
    assert check_stage_change(store, REPO, two, models, NAME, "1.1.0", "production").approvers == ["alice", "bob"]


def test_the_first_production_model_is_exempt_unless_the_policy_says_otherwise(store):
    reg = ModelRegistry(store, REPO)
    reg.register(NAME, b"w1", feature_config_hash="f1", seed=1, **COMMON)
    gate_all = (ApprovalRule("production", ("initial", "major", "minor", "patch"), 1, ()),)
    exempt = ReleasePolicy(ApprovalPolicy(True, gate_all))
    check = check_stage_change(store, REPO, exempt, reg, NAME, "1.0.0", "production")
    assert not check.required and "first production model" in check.message
    strict = ReleasePolicy(ApprovalPolicy(False, gate_all))
    assert check_stage_change(store, REPO, strict, reg, NAME, "1.0.0", "production").required
    # once something has been in production, the exemption is over, even if production is emptied by hand
    reg.set_stage(NAME, "1.0.0", "production", "t", "first")
    reg.register(NAME, b"w2", feature_config_hash="f1", seed=2, **COMMON)
    reg.set_stage(NAME, "1.0.0", "archived", "t", "withdrawn")
    assert reg.production(NAME) is None
    assert check_stage_change(store, REPO, exempt, reg, NAME, "1.1.0", "production").required


# -- the stored policy drives the canary ------------------------------------------------------------------
def test_the_canary_policy_comes_from_the_stored_policy_and_resource_fields_override_it(store):
    from speech_assets.defs.serving.resources import ServingResource

    healthy_but_1pct_errors = VersionMetrics(requests=100, errors=1, p95_latency_s=0.1, mean_confidence=0.9)
    champion = VersionMetrics(requests=100, errors=0, p95_latency_s=0.1, mean_confidence=0.9)
    probe = ProbeResult(0.10, 8)

    def decision():
        policy = ServingResource().policy(load_policy(store, REPO))
        return decide(10.0, champion, healthy_but_1pct_errors, probe, probe, policy)

    assert decision().action == "step"  # 1 % errors is within the default 2 %
    save_policy(store, REPO, ReleasePolicy(rollback=RollbackPolicy(max_error_rate=0.005)), "alice", "tighter")
    d = decision()
    assert d.action == "rollback" and d.failed == ["error_rate"] and "max 0.50%" in d.rules[0].detail
    stored = load_policy(store, REPO)
    overridden = ServingResource(max_error_rate=0.05, canary_steps=[25.0, 100.0]).policy(stored)
    assert overridden.max_error_rate == 0.05 and overridden.steps == (25.0, 100.0)
    assert overridden.min_requests == stored.risk.min_requests  # unset fields stay the stored policy's


# -- the CLI -------------------------------------------------------------------------------------------------
@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECH_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPEECH_ASSETS_STORE", str(tmp_path / "cli_store"))
    monkeypatch.delenv("LAKEFS_ENDPOINT", raising=False)
    from speech_assets.defs.storage.resources import version_store_from_env

    resource = version_store_from_env()
    s = resource.open()
    assert str(tmp_path) in resource.describe()  # the CLI talks to the test's store, not the user's
    yield s, resource.repository, tmp_path
    s.close()


def test_cli_policy_default_show_set_history(cli_home, capsys):
    store, repo, tmp = cli_home
    assert cli_main(["policy", "default"]) == 0
    default_text = capsys.readouterr().out
    assert ReleasePolicy.from_bytes(default_text) == DEFAULT_POLICY
    assert cli_main(["policy", "show"]) == 0
    out = capsys.readouterr()
    assert ReleasePolicy.from_bytes(out.out) == DEFAULT_POLICY and "built-in defaults" in out.err
    assert cli_main(["policy", "history"]) == 0 and "no release policy stored" in capsys.readouterr().out

    body = json.loads(default_text)
    body["rollback"]["max_error_rate"] = 0.01
    body["approvals"]["rules"][0]["approvers"] = ["carol", "dave"]
    f = tmp / "policy.json"
    f.write_text(json.dumps(body))
    assert cli_main(["policy", "set", "--file", str(f), "--who", "carol", "--why", "tighter error budget"]) == 0
    saved = capsys.readouterr().out
    assert "release policy saved by carol at commit" in saved
    assert cli_main(["policy", "show"]) == 0
    out = capsys.readouterr()
    head = store.resolve(repo, "main")
    assert json.loads(out.out)["rollback"]["max_error_rate"] == 0.01 and f"at commit {head}" in out.err
    assert cli_main(["policy", "history"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(head[:12]) and "carol" in line and "tighter error budget" in line

    body["risk"]["canary_steps"] = [50, 10]
    f.write_text(json.dumps(body))
    assert cli_main(["policy", "set", "--file", str(f), "--who", "carol", "--why", "x"]) == 1
    assert "risk.canary_steps" in capsys.readouterr().err
    assert load_policy(store, repo).rollback.max_error_rate == 0.01  # nothing changed


def test_cli_approve(cli_home, capsys):
    store, repo, _ = cli_home
    reg = ModelRegistry(store, repo)
    reg.register(NAME, b"w1", feature_config_hash="f1", seed=1, **COMMON)
    reg.set_stage(NAME, "1.0.0", "production", "trainer", "first model")
    reg.register(NAME, b"w2", feature_config_hash="f2", seed=2, **COMMON)
    assert cli_main(["approve", "asr", "9.0.0", "--to", "production", "--who", "alice", "--why", "x"]) == 1
    assert "asr 9.0.0 is not a registered version" in capsys.readouterr().err
    assert cli_main(["approve", "asr", "2.0.0", "--to", "production", "--who", "alice", "--why", "eval read"]) == 0
    out = capsys.readouterr().out
    assert "recorded: alice approved asr 2.0.0 -> production" in out and "approved by alice (1 of 1" in out
    (a,) = approvals_for(store, repo, NAME, "2.0.0", "production")
    assert (a.approver, a.reason, a.via) == ("alice", "eval read", "cli")


def test_gate_section_round_trips_validates_and_feeds_the_promotion_gate():
    from speech_assets.governance.policy import GatePolicy, ReleasePolicy

    policy = ReleasePolicy.from_json({"gate": {"wer_floor": 0.2, "min_speakers": 5}})
    assert policy.gate == GatePolicy(wer_floor=0.2, min_speakers=5)
    assert ReleasePolicy.from_json(policy.to_json()) == policy
    with pytest.raises(PolicyError) as err:
        ReleasePolicy.from_json({"gate": {"wer_floor": 1.5, "min_utterances": 0, "wer_flor": 0.1}})
    text = "\n".join(err.value.problems)
    assert "gate.wer_floor: must be <= 1" in text and "gate.min_utterances" in text and "gate.wer_flor: unknown key" in text


def test_the_rollout_section_is_versioned_validated_and_feeds_the_bake_guard():
    from speech_assets.governance.policy import RolloutPolicy

    policy = ReleasePolicy.from_json({"rollout": {"mode": "ab", "bake_window_s": 300, "min_effect": 0.05,
                                                  "ab_split": 30, "ab_looks": 5}})
    assert policy.rollout == RolloutPolicy(mode="ab", bake_window_s=300.0, min_effect=0.05, ab_split=30.0, ab_looks=5)
    assert ReleasePolicy.from_bytes(policy.to_bytes()) == policy
    bake = policy.to_bake_policy()
    assert (bake.window_s, bake.min_requests, bake.max_error_rate) == (300.0, 20, policy.rollback.max_error_rate)
    with pytest.raises(PolicyError) as err:
        ReleasePolicy.from_json({"rollout": {"mode": "shadow", "power": 1.0, "alpha": 0, "ab_looks": 0,
                                             "min_effect": -1, "typo": 1}})
    text = "\n".join(err.value.problems)
    for bit in ("rollout.mode: must be one of canary, ab", "rollout.power: must be <= 0.999",
                "rollout.alpha: must be > 0", "rollout.ab_looks: must be an integer >= 1",
                "rollout.min_effect: must be > 0", "rollout.typo: unknown key"):
        assert bit in text, text
