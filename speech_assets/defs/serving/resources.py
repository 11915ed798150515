"""Where and how models are served: the deploy target, its BentoML home, the canary policy, the API key."""

import dataclasses
from pathlib import Path
from typing import Optional

import dagster as dg

from speech_assets.governance.policy import ReleasePolicy
from speech_assets.serving.bake import BakePolicy
from speech_assets.serving.canary import CanaryPolicy
from speech_assets import settings
from speech_assets.serving.targets import DEFAULT_HOST, DEFAULT_PORT, LocalTarget, local_target


class ServingResource(dg.ConfigurableResource):
    """The local target (a `bentoml serve` on 127.0.0.1) and the canary policy it is rolled out under.

    `api_key` arrives as a Dagster `EnvVar` (ASR_API_KEY) when set: the served process requires it and the
    canary probes send it; it is never written to the store or shown.

    The canary's steps, evidence and rollback guardrails come from the release policy versioned in the store
    (`speech_assets.governance.policy`, `python -m speech_assets policy show`); a field set here overrides that
    one value for this deployment (unset, None, the stored policy decides).
    """

    home: str = ""  # routing file, deployment state, server logs; default <SPEECH_ASSETS_HOME>/serving
    bentoml_home: str = ""  # BentoML's model and bento stores; default <SPEECH_ASSETS_HOME>/bentoml
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: Optional[str] = None
    first_canary_weight: Optional[float] = None  # unset: the release policy's first canary step
    canary_steps: Optional[list[float]] = None
    min_requests: Optional[int] = None
    max_error_rate: Optional[float] = None
    max_p95_latency_s: Optional[float] = None
    max_p95_latency_ratio: Optional[float] = None
    min_confidence_ratio: Optional[float] = None
    max_probe_wer: Optional[float] = None
    max_probe_wer_delta: Optional[float] = None
    probe_utterances: int = 30
    bake_window_s: Optional[float] = None  # unset: the release policy's rollout.bake_window_s

    @property
    def home_dir(self) -> Path:
        return Path(self.home) if self.home else settings.serving_home()

    @property
    def bentoml_dir(self) -> Path:
        return Path(self.bentoml_home) if self.bentoml_home else settings.bentoml_home()

    def target(self) -> LocalTarget:
        return local_target(self.home_dir, self.bentoml_dir, host=self.host, port=self.port, api_key=self.api_key)

    def policy(self, release: Optional[ReleasePolicy] = None) -> CanaryPolicy:
        """The canary policy: `release` (the stored release policy; its defaults when None), then this resource's
        overrides."""
        base = (release or ReleasePolicy()).to_canary_policy()
        overrides = {
            name: getattr(self, name)
            for name in ("min_requests", "max_error_rate", "max_p95_latency_s", "max_p95_latency_ratio",
                         "min_confidence_ratio", "max_probe_wer", "max_probe_wer_delta")
            if getattr(self, name) is not None
        }
        if self.canary_steps is not None:
            overrides["steps"] = tuple(float(s) for s in self.canary_steps)
        return dataclasses.replace(base, **overrides)

    def bake_policy(self, release: Optional[ReleasePolicy] = None) -> BakePolicy:
        """The watch after a promotion: the release policy's bake window and guardrails, then this resource's
        overrides (the same guardrail fields as the canary's, so one deployment is judged one way throughout)."""
        base = (release or ReleasePolicy()).to_bake_policy()
        overrides = {
            name: getattr(self, name)
            for name in ("max_error_rate", "max_p95_latency_s", "max_p95_latency_ratio", "max_probe_wer",
                         "max_probe_wer_delta")
            if getattr(self, name) is not None
        }
        if self.bake_window_s is not None:
            overrides["window_s"] = float(self.bake_window_s)
        if self.min_requests is not None:
            overrides["min_requests"] = self.min_requests
        return dataclasses.replace(base, **overrides)


def serving_from_env() -> ServingResource:
    return ServingResource(api_key=dg.EnvVar(settings.ASR_API_KEY)) if settings.has_api_key() else ServingResource()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"serving": serving_from_env()})
