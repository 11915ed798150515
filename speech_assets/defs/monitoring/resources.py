"""The retrain policy and the run config retrains use, as a resource the retrain sensor reads."""

import json

import dagster as dg

from speech_assets import settings
from speech_assets.monitoring.retrain import RetrainPolicy


class RetrainSettings(dg.ConfigurableResource):
    """The retrain policy and the run config a retrain runs with (JSON overrides of the training and eval configs).

    `SPEECH_ASSETS_RETRAIN` (a JSON object of these fields) overrides the defaults, e.g. for the demo's story.
    """

    fire_score: float = RetrainPolicy.fire_score
    rearm_score: float = RetrainPolicy.rearm_score
    cooldown_minutes: float = RetrainPolicy.cooldown_s / 60
    max_per_day: int = RetrainPolicy.max_per_day
    min_new_utterances: int = RetrainPolicy.min_new_utterances
    max_model_age_hours: float = RetrainPolicy.max_model_age_s / 3600
    # a production model trained on since-erased speech is retrained from scratch
    retrain_on_erasure: bool = RetrainPolicy.retrain_on_erasure
    train_config_json: str = json.dumps({"warm_start": True, "epochs": 2})
    # a retrain from scratch (after an erasure marked the production model) gets a first training's budget, not the
    # fine-tune's: "{}" = TrainingConfig's defaults
    scratch_train_config_json: str = "{}"
    eval_config_json: str = "{}"

    def policy(self) -> RetrainPolicy:
        return RetrainPolicy(
            fire_score=self.fire_score, rearm_score=self.rearm_score, cooldown_s=self.cooldown_minutes * 60,
            max_per_day=self.max_per_day, min_new_utterances=self.min_new_utterances,
            max_model_age_s=self.max_model_age_hours * 3600, retrain_on_erasure=self.retrain_on_erasure,
        )

    def run_config(self) -> dict:
        ops = {}
        if json.loads(self.train_config_json):
            ops["asr_checkpoint"] = {"config": json.loads(self.train_config_json)}
        if json.loads(self.eval_config_json):
            ops["eval_report"] = {"config": json.loads(self.eval_config_json)}
        return {"ops": ops} if ops else {}


def retrain_from_env() -> RetrainSettings:
    overrides = settings.retrain_overrides()
    for key in ("train_config_json", "eval_config_json", "scratch_train_config_json"):
        if key in overrides and not isinstance(overrides[key], str):
            overrides[key] = json.dumps(overrides[key])
    return RetrainSettings(**overrides)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"retrain": retrain_from_env()})
