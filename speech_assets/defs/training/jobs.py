"""The retrain job: train → evaluate → gate → register, one run (the gate blocks registration in that run)."""

import dagster as dg

train_and_register = dg.define_asset_job(
    "train_and_register",
    selection=dg.AssetSelection.assets("asr_checkpoint", "eval_report", "registered_model"),
    tags={"speech_assets/pool": "training"},  # dagster.yaml: at most one such run at a time
    description="Train a challenger on main, evaluate it against the champion, register it if the gate passes.",
)
