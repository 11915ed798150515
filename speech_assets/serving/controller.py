"""One tick of the canary controller: gather the evidence, decide, act, record.  No Dagster here (the sensor
in defs/serving/sensors.py calls `CanaryController.tick` and shows its outcome).

    outcome = CanaryController(target, registry, policy, probes=loader).tick(cursor)

A tick, in order:
  1. reconcile: if the registry already says what became of the challenger (promoted or archived — by an
     operator, or by a previous tick that crashed between the registry write and the routing write), the
     routing follows the registry; if the registry's production or canary is not deployed at all (an
     operator's `models rollback`), the outcome is `out_of_sync` and the caller runs the deployment assets;
  2. open a window: the first tick after a routing change only remembers the metrics scrape (the baseline);
  3. hold while the challenger has served fewer than `min_requests` live requests without an error;
  4. otherwise send the labelled probe set through the service to both sides, `decide`, and act: step the
     weight, promote, or roll back.  The registry is written first (with the evidence), then the routing, so
     a crash between the two is repaired by step 1 of the next tick.
  5. a step into full traffic (100 %) or a promotion first asks `approval(version, "production")` (the
     release policy's named approvals, see speech_assets.governance.approvals): while it is unsatisfied the
     challenger holds at its current weight (`awaiting_approval`, with the command to run), and the guardrails
     keep being evaluated every tick, so a challenger that degrades while it waits is still rolled back.
  6. after a promotion, with a `bake_policy`, the new production model is on probation for the bake window
     (`serving.bake`): every tick judges its live metrics since the promotion and its probe WER against the
     previous production model's on the same audio; a breach rolls back to the previous version (registry
     `rollback` with the evidence, then the routing: the service loads the old model before it switches, so no
     request fails), the window passing ends the bake (`baked`, recorded).

The cursor (a JSON-able dict the caller keeps between ticks) holds the window's id and baseline scrape.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from speech_assets.serving import metrics as prom
from speech_assets.serving.bake import Bake, BakePolicy, decide_bake
from speech_assets.serving.canary import CanaryDecision, CanaryPolicy, ProbeResult, VersionMetrics, decide
from speech_assets.serving.probe import run_probe, scrape
from speech_assets.serving.routing import CHALLENGER, CHAMPION, ModelRef, RoutingState

ACTOR = "canary_controller"


@dataclass
class TickOutcome:
    # idle | out_of_sync | not_ready | window_opened | hold | awaiting_approval | step | promote | rollback |
    # reconciled | baking | baked | bake_rollback | stale (the routing moved during the tick: nothing done)
    action: str
    message: str
    cursor: dict
    routing: RoutingState | None = None  # after the tick
    decision: CanaryDecision | None = None
    evidence: dict = field(default_factory=dict)

    @property
    def changed_routing(self) -> bool:
        return self.action in ("step", "promote", "rollback", "reconciled", "bake_rollback")


def _clean(value):
    """JSON-safe numbers (NaN/inf become None): evidence goes into the hash-chained audit trail."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class CanaryController:
    def __init__(
        self,
        target,  # a DeployTarget
        registry,  # a ModelRegistry (or anything with get/set_stage/record_decision)
        policy: CanaryPolicy = CanaryPolicy(),
        *,
        model_name: str = "asr",
        probes: Callable[[], Sequence[tuple[bytes, str]]] = lambda: [],
        api_key: str | None = None,
        actor: str = ACTOR,
        clock: Callable[[], float] = time.time,
        scrape_fn=scrape,  # injectable for tests; the defaults talk HTTP to the live service
        probe_fn=run_probe,
        # (version, to_stage) -> an object with .required, .satisfied, .approvers, .message (an ApprovalCheck);
        # None: no approval gate (the caller decided none applies)
        approval: Callable[[str, str], object] | None = None,
        # the watch after a promotion (None: none; a promotion ends the controller's interest in the version)
        bake_policy: BakePolicy | None = None,
        # the canary's sample plan (`serving.sample_plan`, as a dict; None: not sized): it does not promote before
        # its challenger has served the planned live requests, and every decision records the plan and the power
        sample_plan: Callable[[], dict | None] = lambda: None,
        # A/B mode (`evaluation.sequential`): the challenger keeps its fixed share and the pre-registered
        # sequential test on live per-request confidence decides at its planned looks (None: canary mode)
        ab_design=None,
        # seconds of probing after which the champion's probe waits for the next tick (Dagster abandons a sensor
        # tick after 60 s; a slow model's two probe passes can take longer than that on a CPU)
        probe_budget_s: float = 20.0,
        # a kept probe result is redone after this long (the service, not the weights, may have changed)
        probe_refresh_s: float = 300.0,
    ):
        self.sample_plan, self.ab_design, self.probe_budget_s = sample_plan, ab_design, probe_budget_s
        self.probe_refresh_s = probe_refresh_s
        self.target, self.registry, self.policy, self.bake_policy = target, registry, policy, bake_policy
        self.model_name, self.probes, self.api_key, self.actor, self.clock = model_name, probes, api_key, actor, clock
        self.scrape, self.run_probe = scrape_fn, probe_fn
        self.approval = approval

    # -- the tick -------------------------------------------------------------------------------------------
    def tick(self, cursor: dict | None = None) -> TickOutcome:
        cursor = dict(cursor or {})
        routing = self.target.routing()
        if routing is None or routing.champion is None:
            return TickOutcome("idle", "nothing deployed yet", cursor, routing)
        reconciled = self._reconcile(routing)
        if reconciled is not None:
            return reconciled
        drift = self._out_of_sync(routing)
        if drift is not None:
            return TickOutcome("out_of_sync", drift, {}, routing)
        if routing.challenger is None:
            bake = cursor.get("bake")
            if self.bake_policy is not None and bake and bake.get("version") == routing.champion.version:
                return self._bake_tick(routing, cursor)
            return TickOutcome("idle", f"no canary in flight; {routing.champion.version} serves all traffic",
                               {}, routing)
        status = self.target.status()
        if not status.ready:
            return TickOutcome("not_ready", f"the service is not ready ({status.url or 'not running'})", cursor, routing)

        now = self.scrape(status.url)
        window_id = f"{routing.challenger.version}@{routing.revision}"
        # a server that restarted (crash, recovery) lost its counters and answers its first requests cold: the
        # window before the restart is gone, and its cold start is not the challenger's latency, so start again
        server = f"{status.pid}@{status.started_at}"
        restarted = cursor.get("window") == window_id and cursor.get("server") not in (None, server)
        if cursor.get("window") != window_id or restarted:
            # the canary's own start (its first window) is kept across steps: the planned sample counts them all
            start = cursor.get("canary") if (cursor.get("canary") or {}).get("version") == routing.challenger.version \
                else {"version": routing.challenger.version, "baseline": prom.counters_to_json(now),
                      "started_at": self.clock()}
            if restarted:  # the planned sample (and an A/B test's data) count again from the restart: conservative
                start = {**start, "baseline": prom.counters_to_json(now), "started_at": self.clock(),
                         "restarts": int(start.get("restarts", 0)) + 1}
            cursor = {"window": window_id, "opened_at": self.clock(), "baseline": prom.counters_to_json(now),
                      "canary": start, "server": server}
            return TickOutcome(
                "window_opened",
                f"evidence window opened for {routing.challenger.version} at {routing.weight:g}% "
                f"(routing revision {routing.revision})"
                + (f"; the service restarted (pid {status.pid}), so the window before it does not count"
                   if restarted else ""), cursor, routing,
            )
        window = prom.window(now, prom.counters_from_json(cursor["baseline"]))
        champ = window.get(routing.champion.version, VersionMetrics())
        chal = window.get(routing.challenger.version, VersionMetrics())
        if chal.requests < self.policy.min_requests and chal.errors == 0:
            return TickOutcome(
                "hold",
                f"hold {routing.challenger.version} at {routing.weight:g}%: {chal.requests} live requests of "
                f"{self.policy.min_requests} needed, no errors", cursor, routing,
                evidence=_clean({"challenger": asdict(chal), "champion": asdict(champ)}),
            )

        utterances = list(self.probes())
        chal_probe = champ_probe = None
        if utterances:
            chal_probe, champ_probe, cursor = self._probe(routing, status.url, utterances, cursor)
            if champ_probe is None and chal_probe.failed_requests == 0:
                return TickOutcome(
                    "hold", f"hold {routing.challenger.version} at {routing.weight:g}%: probed it "
                    f"({chal_probe.wer:.2%} WER on {chal_probe.utterances} utterances); {routing.champion.version} "
                    f"on the same audio next tick (a tick stays within the sensor's time limit)", cursor, routing)
        decision = decide(routing.weight, champ, chal, chal_probe, champ_probe, self.policy)
        ab_look = None
        if self.ab_design is not None and decision.action != "rollback":
            decision, ab_look, cursor = self._ab_look(routing, now, cursor, decision)
        sample = self._sample(routing, now, cursor)
        if decision.action == "promote" and sample and sample["live_requests"] < sample["live_requests_needed"]:
            decision = CanaryDecision(
                "hold", routing.weight, decision.rules,
                f"healthy at {routing.weight:g}%, but {sample['live_requests']} of the {sample['live_requests_needed']} "
                f"live requests its sample plan needs (zero failures: an error rate below "
                f"{sample['max_error_rate']:.1%} at alpha {sample['alpha']:g})"
                + (f"; about {sample['eta_s'] / 60:.1f} min more at {sample['challenger_rate_per_s']:.2f} requests/s"
                   if sample.get("eta_s") is not None and sample.get("challenger_rate_per_s") else ""))
        evidence = _clean({
            "sample": sample,
            "ab": {"design": self.ab_design.to_dict(), "look": ab_look} if self.ab_design is not None else None,
            "decision": decision.to_dict(),
            "window": {"opened_at": cursor.get("opened_at"), "closed_at": self.clock(),
                       "champion": {"version": routing.champion.version, **asdict(champ)},
                       "challenger": {"version": routing.challenger.version, **asdict(chal)}},
            "probe": {"utterances": len(utterances),
                      "challenger": asdict(chal_probe) if chal_probe else None,
                      "champion": asdict(champ_probe) if champ_probe else None},
            "routing_revision": routing.revision, "weight": routing.weight, "service": status.url,
            "policy": self.policy.to_dict(),
        })
        return self._act(routing, decision, evidence, now, cursor)

    def _probe(self, routing: RoutingState, url: str, utterances: list, cursor: dict
               ) -> tuple[ProbeResult, ProbeResult | None, dict]:
        """Both models on the probe set: (challenger's, champion's or None when it waits for the next tick).

        A version's answers on a fixed probe set do not change from tick to tick (decoding is deterministic), so a
        clean result is kept in the cursor for `probe_refresh_s`, keyed by the probe set's digest; one with
        failed requests is not kept (it is evidence of this tick only). A slow model (Whisper on a CPU) probes one
        side per tick when the first took more than `probe_budget_s`: a Dagster sensor tick that runs past its
        time limit is abandoned while its work goes on, stale."""
        key = hashlib.sha256(b"".join(hashlib.sha256(w).digest() + t.encode() for w, t in utterances)).hexdigest()[:16]
        cache = dict(cursor.get("probes") or {})
        if cache.get("key") != key:
            cache = {"key": key}
        started, results, probed = time.monotonic(), {}, False
        for side, ref in ((CHALLENGER, routing.challenger), (CHAMPION, routing.champion)):
            kept = cache.get(ref.version)
            if kept and self.clock() - float(kept["at"]) < self.probe_refresh_s:
                results[side] = ProbeResult(**{k: v for k, v in kept.items() if k != "at"})
                continue
            if probed and time.monotonic() - started > self.probe_budget_s:
                break  # this tick already spent its budget on the challenger's pass
            result, _ = self.run_probe(url, side, utterances, api_key=self.api_key, expect_version=ref.version)
            results[side], probed = result, True
            if result.failed_requests == 0:
                cache[ref.version] = {**asdict(result), "at": self.clock()}
        return results[CHALLENGER], results.get(CHAMPION), {**cursor, "probes": cache}

    # -- acting -----------------------------------------------------------------------------------------
    def _act(self, routing: RoutingState, decision: CanaryDecision, evidence: dict, now, cursor) -> TickOutcome:
        v = routing.challenger.version
        current = self.target.routing()
        if current is None or current.revision != routing.revision:
            # the routing changed while this tick gathered its evidence (an overlapping tick, a person): its
            # evidence is about a state that is gone, so it acts on nothing and the next tick starts afresh
            return TickOutcome("stale", f"routing moved to revision {current.revision if current else None} "
                               f"during this tick (read at {routing.revision}): no action", {}, current)
        if decision.action == "hold":
            if (evidence.get("ab") or {}).get("look"):  # an A/B look that continues is a decision: on the record
                self.registry.record_decision(self.model_name, v, self.actor, decision.reason, evidence)
            return TickOutcome("hold", f"hold {v} at {routing.weight:g}%: {decision.reason}", cursor, routing,
                               decision, evidence)
        # The approval gates the challenger taking all traffic, not only the registry label: at 100 % it already
        # serves every user, so an unapproved version must not get there.  A guardrail breach (rollback) is never
        # gated, and the cursor keeps the window open, so the evidence keeps accumulating while it waits.
        full_traffic = decision.action == "promote" or (decision.action == "step" and decision.weight >= 100.0 - 1e-9)
        if full_traffic and self.approval is not None:
            check = self.approval(v, "production")
            evidence["approval"] = _clean({"required": bool(check.required), "satisfied": bool(check.satisfied),
                                           "approvers": list(check.approvers), "message": check.message})
            if not check.satisfied:
                return TickOutcome(
                    "awaiting_approval",
                    f"hold {v} at {routing.weight:g}%: awaiting approval before "
                    f"{'promotion' if decision.action == 'promote' else 'full traffic'} — {check.message}",
                    cursor, routing, decision, evidence,
                )
        if decision.action == "step":
            self.registry.record_decision(self.model_name, v, self.actor, decision.reason, evidence)
            new = routing.with_weight(decision.weight)
        elif decision.action == "promote":
            self.registry.set_stage(self.model_name, v, "production", self.actor,
                                    f"canary promoted: {decision.reason}", evidence=evidence)
            new = routing.promoted()
        else:  # rollback
            self.registry.set_stage(self.model_name, v, "archived", self.actor,
                                    f"canary rolled back: {decision.reason}", evidence=evidence)
            new = routing.rolled_back()
        self.target.apply_routing(new)
        next_cursor = ({"window": f"{v}@{new.revision}", "opened_at": self.clock(), "baseline": prom.counters_to_json(now),
                        "canary": cursor.get("canary"), "probes": cursor.get("probes"), "server": cursor.get("server")}
                       if new.challenger is not None else {})
        if decision.action == "promote" and self.bake_policy is not None:
            probe = (evidence.get("probe") or {}).get("champion")
            bake = Bake.after_promotion(
                v, routing.champion, started_at=self.clock(),
                previous_probe=ProbeResult(**probe) if probe else None,
                previous_p95_s=((evidence.get("window") or {}).get("champion") or {}).get("p95_latency_s"))
            next_cursor = {"bake": bake.to_dict(), "baseline": prom.counters_to_json(now)}
        verb = {"step": f"stepped {v} to {decision.weight:g}%", "promote": f"promoted {v}",
                "rollback": f"rolled back {v}"}[decision.action]
        return TickOutcome(decision.action, f"{verb}: {decision.reason}", next_cursor, new, decision, evidence)

    def _ab_look(self, routing: RoutingState, now, cursor: dict, guardrails: CanaryDecision
                 ) -> tuple[CanaryDecision, dict | None, dict]:
        """A/B mode: the next planned look of the sequential test, once both arms have its sample; the guardrails
        passed (a breach rolls back before any look)."""
        design = self.ab_design
        start = dict(cursor.get("canary") or {})
        done = int(start.get("ab_looks", 0))
        base = prom.counters_from_json(start["baseline"]) if "baseline" in start else None
        arms = {side: prom.confidence_spread(now, base, ref.version)
                for side, ref in ((CHALLENGER, routing.challenger), (CHAMPION, routing.champion))}
        k = done + 1
        need = design.look_size(k)
        have = min(arms[CHALLENGER][0], arms[CHAMPION][0])
        if have < need:
            return (CanaryDecision("hold", routing.weight, guardrails.rules,
                                   f"A/B at a fixed {routing.weight:g}%: {have} of {need} requests per arm for look "
                                   f"{k}/{design.looks}"), None, cursor)
        from speech_assets.evaluation.sequential import ArmStats

        look = design.analyse(k, ArmStats(*arms[CHALLENGER]), ArmStats(*arms[CHAMPION]))
        start["ab_looks"] = k
        cursor = {**cursor, "canary": start}
        action = {"promote": "promote", "rollback": "rollback", "continue": "hold"}[look.action]
        return CanaryDecision(action, 0.0 if action != "hold" else routing.weight, guardrails.rules,
                              f"A/B {look.reason}"), look.to_dict(), cursor

    def _sample(self, routing: RoutingState, now, cursor: dict) -> dict | None:
        """The plan, with what the canary has so far: live requests served by the challenger since it entered."""
        plan = self.sample_plan()
        if not plan or plan.get("version") not in (None, routing.challenger.version):
            return None  # not sized, or sized for another challenger
        start = cursor.get("canary") or {}
        since = prom.window(now, prom.counters_from_json(start["baseline"])) if "baseline" in start else {}
        served = since.get(routing.challenger.version, VersionMetrics()).requests
        # how long the rest takes at the challenger's observed rate since it entered (None: no rate yet)
        elapsed = self.clock() - float(start.get("started_at", self.clock()))
        rate = served / elapsed if elapsed > 0 and served else None
        left = max(int(plan.get("live_requests_needed") or 0) - served, 0)
        return {**plan, "live_requests": served, "challenger_rate_per_s": rate,
                "eta_s": (left / rate) if rate else (0.0 if not left else None)}

    # -- after a promotion ---------------------------------------------------------------------------------
    def _bake_tick(self, routing: RoutingState, cursor: dict) -> TickOutcome:
        bake = Bake.from_dict(cursor["bake"])
        v = bake.version
        status = self.target.status()
        if not status.ready:
            return TickOutcome("not_ready", f"bake of {v}: the service is not ready ({status.url or 'not running'})",
                               cursor, routing)
        now = self.scrape(status.url)
        window = prom.window(now, prom.counters_from_json(cursor["baseline"]))
        mine = window.get(v, VersionMetrics())
        elapsed = self.clock() - bake.started_at
        probe = None
        if mine.requests >= self.bake_policy.min_requests or mine.errors or elapsed >= self.bake_policy.window_s:
            utterances = list(self.probes())
            if utterances:
                probe, _ = self.run_probe(status.url, CHAMPION, utterances, api_key=self.api_key, expect_version=v)
        decision = decide_bake(bake, self.clock(), mine, probe, self.bake_policy)
        evidence = _clean({"bake": decision.to_dict(), "since_promotion": {"version": v, **asdict(mine)},
                           "previous": bake.previous, "previous_probe_wer": bake.previous_probe_wer,
                           "previous_p95_s": bake.previous_p95_s, "elapsed_s": elapsed,
                           "probe": asdict(probe) if probe else None, "policy": self.bake_policy.to_dict(),
                           "service": status.url, "routing_revision": routing.revision})
        if decision.action == "watch":
            return TickOutcome("baking", f"bake of {v}: {decision.reason}", cursor, routing, evidence=evidence)
        if decision.action == "baked":
            self.registry.record_decision(self.model_name, v, self.actor, f"bake passed: {decision.reason}", evidence)
            return TickOutcome("baked", f"bake of {v} passed: {decision.reason}", {}, routing, evidence=evidence)
        previous = bake.previous
        # registry first (with the evidence), then routing: a crash between the two is repaired by `_out_of_sync`
        # (the registry's production is not the service's champion: the deployment assets run)
        self.registry.rollback(self.model_name, previous["version"], self.actor,
                               f"bake guard rolled {v} back: {decision.reason}", evidence=evidence)
        new = routing.with_champion(ModelRef(previous["version"], previous["tag"], float(previous["temperature"])))
        self.target.apply_routing(new)
        return TickOutcome("bake_rollback", f"rolled back {v} to {previous['version']}: {decision.reason}", {},
                           new, evidence=evidence)

    def _out_of_sync(self, routing: RoutingState) -> str | None:
        """Why the deployment does not serve what the registry says (None when it does)."""
        production = self.registry.production(self.model_name)
        if production is None:
            return None
        canary = self.registry.canary(self.model_name)
        if routing.champion.version != production.version:
            return f"registry production is {production.version}, the service's champion {routing.champion.version}"
        deployed = routing.challenger.version if routing.challenger else None
        if canary is not None and canary.version != deployed:
            return f"registry canary {canary.version} is not deployed (challenger: {deployed or 'none'})"
        return None

    def _reconcile(self, routing: RoutingState) -> TickOutcome | None:
        if routing.challenger is None:
            return None
        from speech_assets.registry.registry import UnknownVersionError

        v = routing.challenger.version
        try:
            stage = str(getattr(self.registry.get(self.model_name, v).stage, "value", ""))
        except UnknownVersionError:
            return None  # not a registry model (a hand-made routing): nothing to reconcile with
        if stage == "production":
            new, what = routing.promoted(), f"the registry already holds {v} as production: routing promotes it"
        elif stage == "archived":
            new, what = routing.rolled_back(), f"the registry archived {v}: routing withdraws it"
        else:
            return None
        self.target.apply_routing(new)
        return TickOutcome("reconciled", what, {}, new)
