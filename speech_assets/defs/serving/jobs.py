"""Deploy what the registry says, without training: run by the canary sensor when the registry and the service
disagree (an operator's `models rollback`, a canary registered by hand), or by an operator."""

import dagster as dg

deploy_models = dg.define_asset_job(
    "deploy_models",
    selection=dg.AssetSelection.assets("asr_bento", "asr_deployment"),
    description="Import the registry's production and canary models, build the bento if the service changed, and "
    "roll out (the service switches models without a restart).",
)
