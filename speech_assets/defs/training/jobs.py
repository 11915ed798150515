"""The retrain job: train → evaluate → gate → register → bento → deploy, one run.

The blocking promotion gate stops registration (and so everything after it) in the same run; a registered
challenger goes out as a canary, which the canary sensor then promotes or rolls back.
"""

import dagster as dg

train_and_deploy = dg.define_asset_job(
    "train_and_deploy",
    selection=dg.AssetSelection.assets("asr_checkpoint", "anchor_set", "eval_report", "registered_model", "asr_bento", "asr_deployment"),
    tags={"speech_assets/pool": "training"},  # dagster.yaml: at most one such run at a time
    description="Train a challenger on main, evaluate it against the champion, register it if the gate passes, "
    "and roll it out (the first model serves everything; later ones enter as a canary).",
)
